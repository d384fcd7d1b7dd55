"""Model tests that need fresh processes, a closed port or a private cache: what the models notebook cannot show.

No test sends traffic anywhere but 127.0.0.1: the hub endpoint is a closed local port, and each process gets its own
XDG cache and Hugging Face cache folders.
"""
import os, sys, json, time, shutil, socket, subprocess
from pathlib import Path
import numpy as np
import pytest
from nbsearch.models import *
from nbsearch.models import _check_texts

heavy = ('torch', 'transformers', 'sentence_transformers')
onnx = pytest.importorskip('onnxruntime', reason="the ONNX tests need nbsearch[onnx]")

def closed_port():
    "A local TCP port that nothing listens on"
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def run_py(code, env, timeout=300):
    "Run Python `code` in a new process with environment `env`; its completed process"
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=timeout, env=env)

@pytest.fixture
def env(tmp_path):
    "An environment with a private XDG cache and config, an empty Hugging Face cache, and the hub at a closed local port"
    e = {k:v for k,v in os.environ.items() if k not in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE', 'NBSEARCH_MODEL', 'NBSEARCH_BACKEND')}
    e.update(XDG_CACHE_HOME=str(tmp_path/'cache'), XDG_CONFIG_HOME=str(tmp_path/'config'), HF_HOME=str(tmp_path/'hf'),
             HF_HUB_CACHE=str(tmp_path/'hf'/'hub'), HF_ENDPOINT=f'http://127.0.0.1:{closed_port()}')
    return e

load_missing = """
import time, sys
from nbsearch.models import load_model, ModelLoadError
t = time.time()
try: load_model('some-org/missing-model'); print('LOADED')
except ModelLoadError as e: print(f'{time.time()-t:.3f}'); print(e)
"""

def test_missing_model_fails_fast_and_the_failed_probe_is_remembered(env):
    r = run_py(load_missing, env)
    assert r.returncode==0, r.stderr
    secs,msg = r.stdout.split('\n', 1)
    assert float(secs) < 4, secs
    assert "could not be reached" in msg and 'hf cache ls' in msg and 'hf cache scan' not in msg
    memo = Path(env['XDG_CACHE_HOME'])/'nbsearch'/'hub.json'
    first = json.loads(memo.read_text())
    assert first['reachable'] is False and first['endpoint']==env['HF_ENDPOINT']
    assert memo.stat().st_mode & 0o777 == 0o600
    r2 = run_py(load_missing, env)
    assert float(r2.stdout.split('\n', 1)[0]) < 2
    assert json.loads(memo.read_text())==first  # not probed again: the memo was not rewritten

def test_hub_offline_needs_no_probe(env):
    r = run_py(load_missing, env | {'HF_HUB_OFFLINE': '1'})
    assert 'switched off (HF_HUB_OFFLINE=1)' in r.stdout
    assert not (Path(env['XDG_CACHE_HOME'])/'nbsearch'/'hub.json').exists()

@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return tiny_cross_encoder(tmp_path_factory.mktemp('models')/'tiny-ce')

def test_cached_model_loads_without_any_hub_request(env, tiny):
    "A model in the Hugging Face cache loads from disk: no probe, even with the hub unreachable"
    snap = Path(env['HF_HUB_CACHE'])/'models--my-org--tiny-ce'
    shutil.copytree(tiny, snap/'snapshots'/('0'*40))
    (snap/'refs').mkdir(); (snap/'refs'/'main').write_text('0'*40)
    r = run_py("from nbsearch.models import *\nm = load_model('my-org/tiny-ce', backend='torch')\n"
               "print(model_kind('my-org/tiny-ce'), model_name(m), cross_scores(m, 'q', ['a', 'b']).shape)", env)
    assert r.returncode==0, r.stderr
    assert r.stdout.split()==['cross', 'my-org/tiny-ce', '(2,)']
    assert not (Path(env['XDG_CACHE_HOME'])/'nbsearch'/'hub.json').exists()

def test_naming_describing_and_errors_import_no_torch(env):
    code = f"""
import sys
from nbsearch.models import *
from nbsearch.models import _load_msg
mini = offline_model()
assert model_kind(mini)=='bi' and resolve_model('all-MiniLM-L6-v2')==mini and default_model_name()==default_model
assert not hub_reachable() and 'could not be reached' in hub_note()
fingerprint(mini); _load_msg('x/y')
for name in ('./no/such/model', 'some-org/missing-model'):
    try: load_model(name)
    except ModelLoadError: pass
print([m for m in {heavy!r} if m in sys.modules])
"""
    r = run_py(code, env)
    assert r.returncode==0, r.stderr
    assert r.stdout.strip()=='[]'

def test_default_model_from_env_and_settings(env, tmp_path):
    code = "from nbsearch.models import *; print(default_model_name())"
    assert run_py(code, env).stdout.strip()==default_model
    cfg = Path(env['XDG_CONFIG_HOME'])/'nbsearch'/'config.toml'
    cfg.parent.mkdir(parents=True); cfg.write_text('model = "all-MiniLM-L6-v2"\n')
    assert run_py(code, env).stdout.strip()=='all-MiniLM-L6-v2'
    assert run_py(code, env | {'NBSEARCH_MODEL': 'my/model'}).stdout.strip()=='my/model'

@pytest.fixture(scope='module')
def xdg(tmp_path_factory):
    "A private XDG cache for this module's ONNX exports, set in this process too"
    d,old = tmp_path_factory.mktemp('xdg'),os.environ.get('XDG_CACHE_HOME')
    os.environ['XDG_CACHE_HOME'] = str(d)
    yield d
    if old is None: os.environ.pop('XDG_CACHE_HOME')
    else: os.environ['XDG_CACHE_HOME'] = old

texts = _check_texts + ['How do I read a notebook without its outputs?', 'sourdough bread needs a starter', '', 'x '*400]

def test_onnx_matches_sentence_transformers_minilm(xdg):
    o,torch_m = load_model(offline_model(), backend='onnx'),load_model(offline_model(), backend='torch')
    assert type(o).__name__=='OnnxModel' and type(torch_m).__name__=='SentenceTransformer'
    a,b = embed(o, texts),embed(torch_m, texts)
    assert a.dtype==np.float32 and a.shape==b.shape
    assert np.abs(a-b).max() < 1e-4
    assert (a*b).sum(1).min() > 0.9999
    assert [model_key(o), tok_key(o), window(o), model_name(o)]==[model_key(torch_m), tok_key(torch_m), window(torch_m), model_name(torch_m)]

def test_onnx_matches_sentence_transformers_cross_encoder(xdg, tiny):
    o,torch_m = load_model(tiny, backend='onnx'),load_model(tiny, backend='torch')
    q = 'which port is busy'
    assert np.abs(cross_scores(o, q, texts) - cross_scores(torch_m, q, texts)).max() < 1e-4
    assert is_cross(o) and model_key(o)==model_key(torch_m) and window(o)==window(torch_m)

def test_onnx_loads_from_cache_without_torch(xdg, tiny):
    key = model_key(load_model(offline_model(), backend='torch'))
    load_model(tiny, backend='onnx')  # exported
    code = f"""
import sys, time
t = time.time()
from nbsearch.models import *
m,ce = load_model('all-MiniLM-L6-v2'),load_model({str(tiny)!r})
e = embed(m, ['kill the process on a port'])
print(type(m).__name__, type(ce).__name__, model_key(m), e.shape, cross_scores(ce, 'q', ['a']).shape, f'{{time.time()-t:.2f}}')
print([m for m in {heavy!r} if m in sys.modules])
"""
    r = run_py(code, {**os.environ, 'XDG_CACHE_HOME': str(xdg)})
    assert r.returncode==0, r.stderr
    out = r.stdout.splitlines()
    assert out[0].split()[:5]==['OnnxModel', 'OnnxModel', key, '(1,', '384)'], out
    assert out[1]=='[]'

def test_backend_env_forces_sentence_transformers(xdg, monkeypatch):
    monkeypatch.setenv('NBSEARCH_BACKEND', 'torch')
    assert type(load_model('all-MiniLM-L6-v2')).__name__=='SentenceTransformer'
    monkeypatch.setenv('NBSEARCH_BACKEND', 'onnx')
    assert type(load_model('all-MiniLM-L6-v2')).__name__=='OnnxModel'

corpus = Path(__file__).parent/'corpus'
second_run = f"""
import sys
sys.argv = ['nbsearch', 'free a busy port', {str(corpus)!r}, '-k', '3']
from nbsearch.cli import nbsearch
rc = nbsearch()
print(rc, [m for m in {heavy!r} if m in sys.modules], file=sys.stderr)
"""

def nbsearch_cmd(): return [str(Path(sys.executable).parent/'nbsearch'), 'free a busy port', str(corpus), '-k', '3']

def hit_rows(out):
    "(path, score) of each hit the CLI printed"
    return [(l.split()[-3].rsplit(':', 1)[0], float(l.split()[1])) for l in out.splitlines() if l[:3].strip().rstrip('.').isdigit()]  # `path:LINE [cell N]`

def test_first_cli_search_answers_first_then_exports_for_the_next_which_imports_no_torch(env):
    "A new user's first search prints its results with sentence-transformers, then exports; the next search runs the export, without torch"
    r = subprocess.run(nbsearch_cmd(), env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode==0, r.stderr
    first = hit_rows(r.stdout)
    assert first and first[0][0].endswith('ports.ipynb'), r.stdout
    notes = [l for l in r.stderr.splitlines() if 'preparing a faster all-MiniLM-L6-v2 for next time' in l]
    assert len(notes)==1, r.stderr
    onnx_dir = Path(env['XDG_CACHE_HOME'])/'nbsearch'/'onnx'
    key = fingerprint(offline_model())
    assert [p.name for p in onnx_dir.iterdir()]==[key]  # the export, and no temporary folder left
    assert {p.name for p in (onnx_dir/key).iterdir()}=={'model.onnx', 'tokenizer.json', 'nbsearch.json'}
    r2 = run_py(second_run, env)
    assert r2.returncode==0, r2.stderr
    assert r2.stderr.splitlines()[-1]=='0 []', r2.stderr  # exit status 0, and no torch, transformers or sentence-transformers
    assert 'preparing' not in r2.stderr
    second = hit_rows(r2.stdout)
    assert [p for p,_ in second]==[p for p,_ in first]
    assert np.abs(np.array([s for _,s in second]) - [s for _,s in first]).max() <= 0.0015  # printed to 3 decimals

def test_ctrl_c_during_the_export_at_exit_leaves_no_export(env):
    "Interrupting the export that follows the results leaves neither an export nor a temporary folder, and says so"
    import signal
    onnx_dir = Path(env['XDG_CACHE_HOME'])/'nbsearch'/'onnx'
    # Ctrl-C acts even when this test runs as a background job, which starts with SIGINT ignored (`cmd &` in a script)
    p = subprocess.Popen(nbsearch_cmd(), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert 'ports.ipynb' in p.stdout.readline()  # the results come first
        p.stdout.read()  # and end, for a reader such as `| grep`, before the export starts
        t = time.time()
        while not (onnx_dir.exists() and any(onnx_dir.iterdir())) and time.time()-t<300: time.sleep(0.05)
        tmp = list(onnx_dir.iterdir())
        assert len(tmp)==1 and tmp[0].name.startswith('.'), tmp  # the export is being written, under a temporary name
        p.send_signal(signal.SIGINT)
        out,err = p.communicate(timeout=120)
    finally: p.kill()
    assert 'interrupted: the faster model is prepared next time' in err, err
    assert list(onnx_dir.iterdir())==[]


def test_user_default_bm25_blank_and_bogus(tmp_path, monkeypatch):
    "NBSEARCH_MODEL=bm25 means BM25; a blank one is unset; a bogus one the user chose fails like `--model bogus`, never silently"
    from nbsearch.cli import cli_model
    from nbsearch.models import ModelLoadError, default_model_name, default_model
    monkeypatch.setenv('HF_HUB_OFFLINE', '1'); monkeypatch.setenv('XDG_CONFIG_HOME', str(tmp_path))
    monkeypatch.setenv('NBSEARCH_MODEL', 'BM25'); assert cli_model(None) is None
    monkeypatch.setenv('NBSEARCH_MODEL', '  '); assert default_model_name()==default_model
    monkeypatch.setenv('NBSEARCH_MODEL', 'bogus-model-name')
    with pytest.raises(ModelLoadError, match='bogus-model-name'): cli_model(None)


def test_api_default_falls_back_offline(tmp_path, monkeypatch, capsys):
    "`rank_nbs` with no model works without a network, as the command does, and says what it used"
    from nbsearch.core import rank_nbs
    monkeypatch.setenv('HF_HUB_OFFLINE', '1'); monkeypatch.setenv('XDG_CONFIG_HOME', str(tmp_path)); monkeypatch.delenv('NBSEARCH_MODEL', raising=False)
    hs = rank_nbs('free a busy port', Path(__file__).parent/'corpus', k=1, index=False)
    assert hs[0].path.name=='ports.ipynb'
    assert 'all-MiniLM-L6-v2' in capsys.readouterr().err

def test_rank_nbs_takes_model_names(tmp_path):
    "`rank_nbs(model=...)` takes what `--model` takes: `bm25` (any case) and the packaged model's name"
    from nbsearch.core import rank_nbs
    bm = rank_nbs('free a busy port', corpus, model='BM25', index=False)
    assert bm and str(bm[0].path).endswith('ports.ipynb') and bm.attrgot('score')==rank_nbs('free a busy port', corpus, model=None, index=False).attrgot('score')
    assert str(rank_nbs('free a busy port', corpus, model='all-MiniLM-L6-v2', index=False, k=1)[0].path).endswith('ports.ipynb')

def test_a_forked_process_runs_batches_at_once_too(xdg, tiny):
    "A process forked after the model ran (`multiprocessing`, `fastcore.parallel`) makes its own threads, and gets the same scores (it leaves with `os._exit`, so that a fork of pytest runs no more of pytest)"
    import signal
    o,ts = OnnxModel(load_model(tiny, backend='onnx').path, threads=2),[t*(i%5+1) for i,t in enumerate(texts*3)]
    want = o.score('which port', ts)  # the pool's threads exist in this process only
    r,w = os.pipe()
    if (pid := os.fork())==0:
        try: signal.alarm(60); os.close(r); os.write(w, o.score('which port', ts).tobytes())
        finally: os._exit(0)
    os.close(w); got = b''
    while (b := os.read(r, 1<<16)): got += b
    os.close(r); os.waitpid(pid, 0)
    assert np.array_equal(np.frombuffer(got, 'float32'), want)

fork_exit = """
import os, sys, time, atexit
from nbsearch.models import OnnxModel
path,parent,child,code,wait = sys.argv[1],sys.argv[2]=='1',sys.argv[3]=='1',int(sys.argv[4]),float(sys.argv[5])
o,ts = OnnxModel(path),['kill the process on port 8000', 'sourdough bread', 'x '*300]*6
want = o.score('which port', ts) if parent else None
if (pid := os.fork())==0:
    atexit.register(print, 'child atexit ran', flush=True)
    if child: got = o.score('which port', ts); print('child same scores', want is None or bool((got==want).all()), flush=True)
    sys.exit(code)
t = time.time()
while not (r := os.waitpid(pid, os.WNOHANG))[0] and time.time()-t<wait: time.sleep(0.05)
if r[0]: print('child exit code', os.waitstatus_to_exitcode(r[1]))
else: os.kill(pid, 9); os.waitpid(pid, 0); print(f'child hung: killed after {wait} s')
"""

@pytest.mark.skipif(not hasattr(os, 'fork'), reason='no os.fork here')
@pytest.mark.parametrize('parent,child,code', [(1, 1, 0), (1, 0, 3), (0, 1, 0)])
def test_a_forked_child_exits_normally(xdg, tiny, parent, child, code):
    "A child forked after onnxruntime was imported, that scores or not (as its parent did or not), leaves by `sys.exit` with its exit code, its `atexit` run (it hung at exit, or aborted, before `_fork_exits`)"
    p = load_model(tiny, backend='onnx').path
    r = subprocess.run([sys.executable, '-c', fork_exit, str(p), str(parent), str(child), str(code), '20'], capture_output=True, text=True, timeout=120)
    want = ['child same scores True']*child + ['child atexit ran', f'child exit code {code}']
    assert (r.returncode, r.stdout.splitlines()) == (0, want), r.stderr

def test_a_bad_thread_count_is_an_error_not_a_failed_export(xdg, tiny, monkeypatch):
    "`NBSEARCH_THREADS` that is not a whole number stops loading with a clear error, and leaves no `.failed` note behind"
    load_model(tiny, backend='onnx')
    for v in ('abc', '0', '٣', '1.5'):
        monkeypatch.setenv('NBSEARCH_THREADS', v)
        with pytest.raises(ValueError, match='NBSEARCH_THREADS'): load_model(str(tiny))
    assert not list(Path(xdg, 'nbsearch', 'onnx').glob('*.failed'))
    monkeypatch.setenv('NBSEARCH_THREADS', '2')
    assert type(load_model(str(tiny))).__name__=='OnnxModel'

def test_a_replaced_tokenizer_is_read_again(xdg, tiny):
    "`_pairs` notices each new tokenizer (compared by identity: Python may give a new one the `id` of the one it replaced)"
    from tokenizers import Tokenizer
    o = load_model(tiny, backend='onnx')
    for lower in (False, True, False, True):
        t = json.loads(o.tok.to_str()); t['normalizer']['lowercase'] = lower
        o.tok = Tokenizer.from_str(json.dumps(t)); o.tok.no_padding(); o.tok.enable_truncation(o.max_seq_length)
        q,texts = 'Which PORT', ['Kill The Process', 'PORT 8000']
        assert [e.ids for e in o._pairs(q, texts)]==[e.ids for e in o.tok.encode_batch([(q, p) for p in texts])]
