"""CUDA end to end, on a lent GPU machine (the `device` tool): which device nbsearch's models use, how long the real
`nbsearch` command takes to index 1,000 notebooks and answer, and how fast nbsearch embeds every passage with a
transformer bi-encoder against plain sentence-transformers encoding of the same passages on the same GPU.

    python bench/gpu.py CORPORA --model MINILM_DIR [--v1 DIR] [--n 1000] [--json-out res.json]

Figures, each printed as it is measured (issue 10: aim for >= 2x the 1,200 passages/s of v1's first index on an H200):
  device         where nbsearch's bi-encoder runs (`load_model(...).device`)
  first_s        the real `nbsearch` command's first search of `n` notebooks, fresh cache: the index built, then the answer
  first_pps      passages in that folder / first_s (nbsearch's first index embeds no passage with the transformer)
  warm_s         the same search again, in a fresh process
  v1_first_s     the same for the checkout `--v1` (v1 embedded every passage with the bi-encoder: its passages/s too)
  st_pps_B       plain `SentenceTransformer.encode(texts, batch_size=B)` of every passage of the folder (B = 32, 256)
  nbs_pps        nbsearch embedding every passage with the bi-encoder (`rank_nbs(..., retriever=bi-encoder)`, the
                 index already built), with this code's GPU batching; nbs_pps_old with 32-passage batches and
                 256-passage chunks, as before
  cross_warm_ms  a warm query at `n` notebooks with a random cross-encoder of TinyBERT-L2's shape on the GPU
The corpus of `n` notebooks is made by copying those of CORPORA into folders (see `bench/speed.py`).
"""
import os, sys, time, json, shutil, tempfile, subprocess, statistics as stats
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pathlib import Path
from fastcore.script import call_parse

root = Path(__file__).resolve().parent.parent
queries = ['run a function over many items in parallel processes', 'strip metadata from notebooks before committing',
           'create a blog with notebooks', 'standard locations for config and cache directories', 'colored text for terminal output',
           'resolve git merge conflicts in notebooks', 'download a url and parse the json', 'hide a cell from the rendered documentation']
res = {}

def say(k, v, note=''):
    res[k] = v
    print(f'{k:16} {v:>10.1f}  {note}' if isinstance(v, float) else f'{k:16} {v!s:>10}  {note}', flush=True)

def cli(pypath, args, cache, timeout=900, **env_kw):
    "Wall seconds of one `nbsearch args` in a fresh process with `PYTHONPATH=pypath` (and environment variables `env_kw`), and its stdout"
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(pypath), os.environ.get('PYTHONPATH', '')]), 'XDG_CACHE_HOME': str(cache),
           'HF_HUB_OFFLINE': '1', **env_kw}
    t = time.perf_counter()
    r = subprocess.run([sys.executable, '-c', 'import sys; from nbsearch.cli import nbsearch; sys.exit(nbsearch())', *map(str, args)],
                       env=env, capture_output=True, text=True, timeout=timeout)
    dt = time.perf_counter()-t
    if r.returncode or '.ipynb' not in r.stdout: print(f'  run failed ({r.returncode}): {r.stderr[-800:]}', flush=True)
    return dt, r.stdout

def rate(f, n):
    t = time.perf_counter(); f(); return n/(time.perf_counter()-t)

@call_parse
def main(
    corpora:str, # A folder of notebooks to copy (e.g. ../shared/corpora)
    model:str, # The folder of the all-MiniLM-L6-v2 bi-encoder
    v1:str=None, # A checkout of v1 (8e5716e) to time the same first search with
    n:int=1000, # Notebooks in the corpus
    json_out:str=None, # Save the figures to this JSON file
    encode_max:int=None, # Time plain encoding on at most this many passages (default: all)
    first_only:bool=False, # Stop after the first and warm searches of this checkout
    onnx:bool=False, # Also time a warm search with the model on ONNX Runtime (NBSEARCH_BACKEND=onnx)
):
    "Time nbsearch on CUDA: device, first index and answer, embedding rates against plain sentence-transformers"
    import torch
    print(f'torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}',
          torch.cuda.get_device_name() if torch.cuda.is_available() else '', f'{os.cpu_count()} CPUs', flush=True)
    from speed import replicate
    from nbsearch.models import load_model, tiny_cross_encoder, embed
    from nbsearch.index import NbIndex, _passage, _passage_sql
    from nbsearch.core import rank_nbs
    m = load_model(model, backend='torch')
    say('device', str(m.device), type(m).__name__)
    q = queries[0]
    with tempfile.TemporaryDirectory(prefix='gpu-') as d:
        d = Path(d); folder = replicate(corpora, n, d/'nbs')
        c = d/'cache-main'
        t,out = cli(root, [q, folder, '-k', '5', '--model', model], c)
        ix = NbIndex(c/'nbsearch'/'index.db')
        texts = [_passage(r).text for r in ix.db.execute(_passage_sql)]
        ix.close()  # copies of its file are made below: no connection may hold writes in its log
        say('passages', len(texts), f'in {n} notebooks')
        say('first_s', t, 'the real nbsearch command: first index of the folder, then the answer')
        say('first_pps', len(texts)/t, 'passages/s of that first index (no transformer embeds them)')
        say('warm_s', cli(root, [q, folder, '-k', '5', '--model', model], c)[0], 'the next search, a fresh process')
        print(out.strip().splitlines()[0] if out.strip() else '(no output)', flush=True)
        if onnx:  # the same warm search with the model run by ONNX Runtime on the CPU (exported on the first of these runs)
            say('onnx_export_s', cli(root, [q, folder, '-k', '5', '--model', model], c, NBSEARCH_BACKEND='onnx')[0], 'first search with NBSEARCH_BACKEND=onnx (exports the model)')
            say('onnx_warm_s', cli(root, [q, folder, '-k', '5', '--model', model], c, NBSEARCH_BACKEND='onnx')[0], 'the next, a fresh process')
        if first_only:
            if json_out: Path(json_out).write_text(json.dumps(res, indent=1))
            return
        if v1:
            c1 = d/'cache-v1'
            t1,out1 = cli(v1, [q, folder, '-k', '5', '--model', model], c1, timeout=1800)
            say('v1_first_s', t1, 'v1: first index (every passage embedded by the bi-encoder), then the answer')
            import sqlite3  # v1's index has its own schema: count its passages with plain SQLite
            db = sqlite3.connect(c1/'nbsearch'/'index.db')
            try: n1 = db.execute('select count(*) from passages').fetchone()[0]
            except sqlite3.Error: n1 = None
            if n1: say('v1_first_pps', n1/t1, f'passages/s ({n1} passages in v1\'s index)')
            say('v1_warm_s', cli(v1, [q, folder, '-k', '5', '--model', model], c1)[0])
        if str(m.device).startswith('cuda'):  # the same rankings on the GPU as on the CPU? each on a copy without cached vectors
            import sqlite3
            got = {}
            for dev in ('cuda', 'cpu'):
                p = d/f'{dev}.db'; shutil.copyfile(c/'nbsearch'/'index.db', p)
                with sqlite3.connect(p) as db: db.execute('delete from pvecs')
                md = load_model(model, backend='torch', device=dev)
                got[dev] = [rank_nbs(o, folder, model=md, index=p, k=10, progress=False) for o in queries]
            same = sum([h.path for h in a]==[h.path for h in b] for a,b in zip(got['cuda'], got['cpu']))
            diff = max(abs(x.score-y.score) for a,b in zip(got['cuda'], got['cpu']) for x,y in zip(a, b))
            say('same_top10', f'{same}/{len(queries)}', 'queries whose top 10 notebooks are the same on the GPU and on the CPU')
            say('max_score_diff', f'{diff:.2g}', 'largest difference of a hit\'s score, GPU against CPU')
        for b in (32, 256):
            ts = texts[:encode_max]
            say(f'st_pps_{b}', rate(lambda: m.encode(ts, batch_size=b, normalize_embeddings=True, convert_to_numpy=True), len(ts)),
                'plain SentenceTransformer.encode, passages/s')
        import nbsearch.models as nm, nbsearch.index as ni
        for tag in ('nbs_pps_old', 'nbs_pps'):
            ixp = d/f'{tag}.db'; shutil.copyfile(c/'nbsearch'/'index.db', ixp)
            old = nm.batch_size_for
            if tag=='nbs_pps_old': nm.batch_size_for = lambda m: 32
            kw = dict(chunk=256) if tag=='nbs_pps_old' else {}
            emb = ni.NbIndex._embed_new
            ni.NbIndex._embed_new = lambda self, *a, **k: emb(self, *a, **{**k, **kw})
            try: say(tag, rate(lambda: rank_nbs(q, folder, model=m, retriever=m, index=ixp, k=5, progress=False), len(texts)),
                     'nbsearch embedding every passage (retriever=the bi-encoder), passages/s')
            finally: nm.batch_size_for = old; ni.NbIndex._embed_new = emb
        ce = load_model(tiny_cross_encoder(d/'tinybert'), backend='torch')
        say('cross_device', str(ce.device))
        ixc = d/'cross.db'
        t = time.perf_counter(); rank_nbs(q, folder, model=ce, index=ixc, k=10, progress=False)
        say('cross_first_s', time.perf_counter()-t, 'in process: the first index with the cross-encoder, then the answer')
        ts = []
        for o in queries:
            t = time.perf_counter(); rank_nbs(o, folder, model=ce, index=ixc, k=10); ts.append(time.perf_counter()-t)
        say('cross_warm_ms', stats.median(ts)*1000, f'median of {len(ts)} queries')
    if json_out: Path(json_out).write_text(json.dumps(res, indent=1))
