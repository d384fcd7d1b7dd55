"""The packaged all-MiniLM-L6-v2 through ONNX Runtime against sentence-transformers (torch), in the same run.

    python bench/onnx_parity.py /work/shared/corpora /work/shared/bench/dev_qrels.json

1. Fresh-process start: `python -c` that imports nbsearch, loads the model and embeds one query; wall time of the whole
   process, medians of `--runs` runs, torch and ONNX runs interleaved.
2. One query in a warm process, and one batch of 64 passages (what a shortlist costs): ONNX on 1 and 2 threads, torch
   as it comes; medians.
3. Rankings: top-10 of `rank_nbs` for every dev query over `--subdirs` of the corpus, with each backend and its own
   index file in `--cache` (so passage vectors are computed once per backend and reused by later runs); lists must be
   identical, or differ only where scores tie within `--tie`. nDCG@10 of both.
ONNX exports and fingerprints go to a private XDG cache in `--cache`.
"""
import os, sys, json, time, statistics, subprocess
from pathlib import Path
sys.path = [p for p in sys.path if Path(p or '.').resolve()!=Path(__file__).resolve().parent]  # so `import onnx` is not this file
import numpy as np
from fastcore.script import call_parse

q1 = 'how do I free a busy TCP port'
start = ("import time; t=time.time(); from nbsearch.models import load_model, embed; "
         "m=load_model('all-MiniLM-L6-v2', backend='{b}'); embed(m, [{q!r}]); print(type(m).__name__, round(time.time()-t, 3))")

def fresh(b, env):
    "Wall seconds of a fresh process that loads the model with backend `b` and embeds one query, and its own report"
    t = time.perf_counter()
    r = subprocess.run([sys.executable, '-c', start.format(b=b, q=q1)], capture_output=True, text=True, env=env)
    if r.returncode: raise RuntimeError(r.stderr[-2000:])
    return time.perf_counter()-t, r.stdout.split()

def med(f, n):
    "Median seconds of `n` calls of `f`, after one warm-up"
    f(); ts = []
    for _ in range(n): t = time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts)

@call_parse
def main(
    corpus:str, # Folder the judged doc ids are relative to
    qrels:str, # JSON file of graded judgments
    subdirs:str='fastcore/nbs nbdev/nbs', # Folders of `corpus` to rank (the judged part)
    runs:int=5, # Fresh processes per backend
    cache:str='/tmp/models-bench', # Folder for the private XDG cache and the two index files
    tie:float=1e-4, # Scores closer than this are ties
    skip_rank:bool=False, # Skip part 3
):
    "Compare the ONNX and torch paths for all-MiniLM-L6-v2: start-up, query latency, and dev-set rankings"
    cache = Path(cache); cache.mkdir(parents=True, exist_ok=True)
    os.environ['XDG_CACHE_HOME'] = str(cache/'xdg')
    os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
    from nbsearch.models import load_model, embed, model_key, export_onnx, offline_model
    t = time.perf_counter(); p = export_onnx('all-MiniLM-L6-v2')
    print(f"ONNX export (cached after the first run): {time.perf_counter()-t:.1f} s, {p}")
    env = dict(os.environ)

    res = {'torch': [], 'onnx': []}
    for i in range(runs):
        for b in ('torch', 'onnx'):
            w,out = fresh(b, env); res[b].append(w)
    mt,mo = statistics.median(res['torch']),statistics.median(res['onnx'])
    print(f"\n1. fresh process, load + one query (wall, median of {runs}): torch {mt:.2f} s, ONNX {mo:.2f} s, torch/ONNX {mt/mo:.1f}x")
    print(f"   torch runs {[round(x, 2) for x in res['torch']]}; ONNX runs {[round(x, 2) for x in res['onnx']]}")

    from nbsearch.models import OnnxModel, _onnx_dir
    st = load_model('all-MiniLM-L6-v2', backend='torch')
    o1,o2 = OnnxModel(_onnx_dir(model_key(st)), threads=1),OnnxModel(_onnx_dir(model_key(st)), threads=2)
    import torch
    from nbsearch.core import get_nb_paths, read_nb
    from nbsearch.read import passages
    from nbsearch.models import model_tok, window
    paths = [p for d in subdirs.split() for p in get_nb_paths(Path(corpus)/d)]
    texts = [ps.text for p in paths[:6] for ps in passages(read_nb(p), model_tok(st), window(st))][:64]
    print(f"\n2. warm process (torch threads: {torch.get_num_threads()}), medians:")
    for n,f in [('one query', lambda m: embed(m, [q1])), (f'{len(texts)} passages', lambda m: embed(m, texts))]:
        k = 15 if n=='one query' else 3
        ts = {nm: med(lambda: f(m), k) for nm,m in [('ONNX 1 thread', o1), ('ONNX 2 threads', o2), ('torch', st)]}
        print(f"   {n}: " + ', '.join(f"{nm} {v*1000:.1f} ms" for nm,v in ts.items()))
    a,b = embed(o1, texts),embed(st, texts)
    print(f"   embeddings of the {len(texts)} passages: max abs diff {np.abs(a-b).max():.2e}, min cosine {(a*b).sum(1).min():.7f}")
    if skip_rank: return

    from nbsearch.core import rank_nbs, read_qrels, ndcg, _doc_id
    qs = read_qrels(qrels)
    tops,nd = {},{}
    for b,m in [('torch', st), ('onnx', o1)]:
        t = time.perf_counter()
        tops[b] = {q: rank_nbs(q, paths, model=m, k=10, index=cache/f'{b}.db', progress=False) for q in qs}
        nd[b] = np.mean([ndcg([_doc_id(h.path, corpus) for h in tops[b][q]], qs[q]) for q in qs])
        print(f"   {b}: {len(qs)} queries ranked in {time.perf_counter()-t:.0f} s (first run embeds {len(paths)} notebooks' passages)")
    same,ties,diff,dmax = 0,0,[],0.
    for q in qs:
        ht,ho = tops['torch'][q],tops['onnx'][q]
        pt,po = [h.path for h in ht],[h.path for h in ho]
        sc = {h.path: h.score for h in ht}
        dmax = max([dmax]+[abs(h.score-sc[h.path]) for h in ho if h.path in sc])
        if pt==po: same += 1
        elif len(ht)==len(ho) and all(abs(x.score-y.score)<=tie for x,y in zip(ht, ho)): ties += 1  # swaps among equal scores
        else: diff.append(q)
    print(f"\n3. top-10 over {len(paths)} notebooks, {len(qs)} dev queries: identical {same}, differing only by ties {ties}, "
          f"different {len(diff)} {diff}; max score diff of a notebook in both {dmax:.2e}")
    print(f"   nDCG@10: torch {nd['torch']:.4f}, ONNX {nd['onnx']:.4f}")
