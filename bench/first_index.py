"""The first index of a large folder with a cross-encoder, for several checkouts in the same run, with a time per phase.

    git archive 8e5716e | tar -x -C /tmp/v1           # v1: the code before issue 10 (an FTS5 table, no dense leg)
    python bench/first_index.py --versions "v1=/tmp/v1 new=." --n 1000 --runs 3
    python bench/first_index.py --versions "new=." --n 300 --runs 1 --profile /tmp/first.prof   # cProfile of one run
    python bench/first_index.py --versions "v1=/tmp/v1 new=." --folder /tmp/nbs --cross /tmp/tiny   # a folder and model made before

Each run is a fresh process with `PYTHONPATH` set to a checkout: it copies nothing, opens a new index file, and times
`rank_nbs` of one query over `n` notebooks (copies of ../shared/corpora, as bench/speed.py makes them) with a random
cross-encoder of TinyBERT-L2's shape: the whole first index (reading, cutting, postings, the dense leg) and the first
answer. Runs of the versions alternate (v1, new, v1, new, ...) so that a busy machine slows them alike; each figure is a
median. Phases are timed by wrapping the functions a checkout has (those it lacks read '-'), so they overlap: `read`
(JSON to `Nb`), `cut` (model tokenizer offsets and passages), `add` (storing passages and postings; it holds `lex`,
the `lex_text` calls), `dense` (the dense leg: embedding every passage, storing the vectors; it holds `static`, the
static model's `embed`), `commit` (write transactions closing).
`--fast-offsets` makes the cross-encoder cut passages with `nbsearch.tokens.bert_offsets` (each word tokenized once), as
`nbsearch.models.OnnxModel.offsets` and `nbsearch.read.hf_offsets` could: the gain that change would bring.
"""
import os, sys, json, time, tempfile, subprocess, statistics as stats
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pathlib import Path
from fastcore.script import call_parse

root = Path(__file__).resolve().parent.parent
q = 'run a function over many items in parallel processes'
phases = 'read cut add lex dense static commit'.split()

def _timer(T, k, f):
    def _f(*args, **kw):
        t = time.perf_counter()
        try: return f(*args, **kw)
        finally: T[k] = T.get(k, 0)+time.perf_counter()-t
    return _f

def _wrap(T):
    "Time the phases this checkout has, by wrapping its functions"
    import nbsearch.index as I
    targets = [('read', I, 'PassageSetting', 'read'), ('cut', I, 'PassageSetting', 'cut'), ('add', I, 'NbIndex', '_add'),
               ('dense', I, 'NbIndex', '_embed_new')]
    for k,mod,cls,name in targets:
        if (c := getattr(mod, cls, None)) and hasattr(c, name): setattr(c, name, _timer(T, k, getattr(c, name)))
    if hasattr(I, 'lex_text'): I.lex_text = _timer(T, 'lex', I.lex_text)
    try:
        from nbsearch.static import StaticModel
        StaticModel.embed = _timer(T, 'static', StaticModel.embed)
    except ImportError: pass
    if hasattr(I.NbIndex, '_write'):  # time from `commit` to its end: the `__exit__` of the context manager
        w = I.NbIndex._write
        def _write(self):
            cm = w(self)
            class _CM:
                def __enter__(s): return cm.__enter__()
                def __exit__(s, *a):
                    t = time.perf_counter()
                    try: return cm.__exit__(*a)
                    finally: T['commit'] = T.get('commit', 0)+time.perf_counter()-t
            return _CM()
        I.NbIndex._write = _write

def _fast_offsets():
    "Make ONNX models cut passages with `bert_offsets` (the same offsets, each word tokenized once)"
    import nbsearch.models as M
    from nbsearch.tokens import bert_offsets
    orig = M.OnnxModel.offsets
    def offsets(self, texts):
        if '_fast_offs' not in self.__dict__: self._fast_offs = bert_offsets(self.tok)
        return self._fast_offs(texts) if self._fast_offs else orig(self, texts)
    M.OnnxModel.offsets = offsets

def one(folder, model, profile=None, fast_offsets=False):
    "One first index in this process: `{'total': s, phase: s, ...}`"
    import warnings; warnings.simplefilter('ignore')
    T = {}
    if fast_offsets: _fast_offsets()
    _wrap(T)
    from nbsearch.core import rank_nbs
    from nbsearch.models import load_model
    m = load_model(model)
    with tempfile.TemporaryDirectory() as d:
        if profile: import cProfile; pr = cProfile.Profile(); pr.enable()
        t = time.perf_counter()
        hits = rank_nbs(q, folder, model=m, k=10, index=Path(d)/'index.db', progress=False)
        T['total'] = time.perf_counter()-t
        if profile: pr.disable(); pr.dump_stats(profile)
    assert len(hits), 'no hits'
    return T

@call_parse
def main(
    versions:str='new=.', # Checkouts to time, as `name=path` separated by spaces; the first is the baseline of the ratios
    n:int=1000, # Notebooks in the folder
    runs:int=3, # Runs of each version
    corpus:str=None, # Folder whose notebooks are copied (default: ../shared/corpora)
    profile:str=None, # Write a cProfile of the (last) run of each version to this path, suffixed by the version's name
    fast_offsets:str='', # Names of versions (comma-separated) whose ONNX cross-encoder cuts with `nbsearch.tokens.bert_offsets`
    folder:str=None, # An existing folder of notebooks to index instead of `n` copies of `corpus` (read only)
    cross:str=None, # An existing cross-encoder folder instead of a new random one (read only)
    one_run:str=None, # (internal) run once in this process over this folder, printing the JSON of the times
    model:str=None, # (internal) the cross-encoder folder
):
    "Time the first index of `n` notebooks with a cross-encoder for each checkout of `versions`, alternating runs"
    if one_run: print(json.dumps(one(one_run, model, profile, fast_offsets=='1'))); return
    from speed import replicate
    from nbsearch.models import tiny_cross_encoder
    vers = dict(o.split('=', 1) for o in versions.split())
    corpus = corpus or root.parent/'shared'/'corpora'
    if not Path(corpus).exists(): corpus = Path('/work/shared/corpora')
    res = {v:[] for v in vers}
    with tempfile.TemporaryDirectory(prefix='first-index-') as tmp:
        folder = folder or replicate(corpus, n, Path(tmp)/'nbs')
        model = cross or tiny_cross_encoder(Path(tmp)/'tinybert-l2')
        for r in range(runs):
            for v,p in vers.items():
                env = {**os.environ, 'PYTHONPATH': str(Path(p).resolve()), 'HF_HUB_OFFLINE': '1', 'TOKENIZERS_PARALLELISM': 'false'}
                args = [sys.executable, __file__, '--one-run', str(folder), '--model', str(model)]
                if profile: args += ['--profile', f'{profile}.{v}']
                if v in fast_offsets.split(','): args += ['--fast-offsets', '1']
                out = subprocess.run(args, env=env, capture_output=True, text=True)
                if out.returncode: print(f'{v} failed: {out.stderr[-500:]}', file=sys.stderr); continue
                res[v].append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(f"run {r+1} {v}: {res[v][-1]['total']:.1f} s", file=sys.stderr, flush=True)
    print(f'\nFirst index of {folder if folder else str(n)+" notebooks"} + first answer, TinyBERT-L2-shaped cross-encoder, {os.cpu_count()} CPUs; '
          f'median of {runs} runs, seconds (phases overlap: `lex` is inside `add`, `static` inside `dense`)')
    cols = ['total', *phases]
    print(f"{'version':10}" + ''.join(f'{c:>8}' for c in cols) + '   total/first')
    base = None
    for v,rs in res.items():
        if not rs: print(f'{v:10} failed'); continue
        med = {c:stats.median([o[c] for o in rs]) if all(c in o for o in rs) else None for c in cols}
        base = base or med['total']
        print(f'{v:10}' + ''.join(f'{m:8.1f}' if m is not None else f"{'-':>8}" for m in med.values()) + f"   {med['total']/base:.2f}")
    print('all runs:', {v:[round(o['total'], 1) for o in rs] for v,rs in res.items()})
