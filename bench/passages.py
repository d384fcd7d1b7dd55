"""How passages are cut and scores aggregated: the measurements behind nbsearch's choices.

    python bench/passages.py ../shared/corpora ../shared/bench/dev_qrels.json

With the packaged all-MiniLM-L6-v2 bi-encoder (every passage scored, no stage 1), prints nDCG@10 and MRR for
- passage windows of 64, 128 and 253 tokens (253 is all the model reads);
- the context line each passage starts with: none, the title, or title, subtitle and nearest heading (nbsearch's);
- four ways to turn passage scores into a notebook score: the best passage (nbsearch's), the best plus a tenth of the
  second, the mean of the best three, and a soft maximum.
Each setting is embedded once, in a fresh in-memory index; a full run takes about 10 minutes on 2 CPU cores.
"""
from pathlib import Path
import numpy as np
from fastcore.script import call_parse
import nbsearch.read
from nbsearch.core import get_nb_paths, setting_for, ndcg, mrr, read_qrels, _doc_id
from nbsearch.index import NbIndex
from nbsearch.models import load_model, offline_model, embed, model_key

aggs = {'max': lambda v: v[0], 'max+0.1*second': lambda v: v[0]+0.1*(v[1] if len(v)>1 else 0),
        'mean of best 3': lambda v: v[:3].mean(), 'softmax (t=0.05)': lambda v: 0.05*np.log(np.exp(v/0.05).sum())}

ctx_orig = nbsearch.read._ctx
ctxs = {'none': lambda nb, head: '', 'title': lambda nb, head: nb.title, 'title, subtitle, heading': ctx_orig}

def measure(qs, paths, root, m, max_tokens, ctx):
    "nDCG@10 and MRR of each aggregation, for passages of `max_tokens` with context line `ctx`"
    nbsearch.read._ctx = ctxs[ctx]
    try:
        ix,st = NbIndex(),setting_for(m, max_tokens=max_tokens)
        rp = ix.sync(paths, st)
        ids,vecs = ix.embeddings(m, model_key(m), st, rp)
    finally: nbsearch.read._ctx = ctx_orig
    owner = np.array([_doc_id(p, root) for p in ix.paths_of(ids)])
    res = {a: [] for a in aggs}
    for q,rel in qs.items():
        s = vecs @ embed(m, [q])[0]
        per = {d: np.sort(s[owner==d])[::-1] for d in set(owner)}
        for a,f in aggs.items():
            sc = {d: f(v) for d,v in per.items()}
            ranked = sorted(sc, key=lambda d: -sc[d])
            res[a].append((ndcg(ranked, rel), mrr(ranked, rel)))
    return {a: np.mean(v, axis=0) for a,v in res.items()}, len(ids)

@call_parse
def main(
    corpus:str, # Folder the judged doc ids are relative to
    qrels:str, # JSON file of graded judgments
    subdirs:str='fastcore/nbs nbdev/nbs', # Folders of `corpus` to search
):
    "Print nDCG@10 and MRR for passage windows, context lines and aggregations"
    qs,m = read_qrels(qrels),load_model(offline_model())
    paths = get_nb_paths([Path(corpus)/s for s in subdirs.split()])
    runs = [(128, 'title, subtitle, heading'), (64, 'title, subtitle, heading'), (253, 'title, subtitle, heading'), (128, 'title'), (128, 'none')]
    print(f"{'window':>6}  {'context line':26} {'passages':>8}  " + '  '.join(f'{a:>16}' for a in aggs) + '   (nDCG@10 / MRR)')
    for n,ctx in runs:
        r,np_ = measure(qs, paths, corpus, m, n, ctx)
        print(f'{n:>6}  {ctx:26} {np_:>8}  ' + '  '.join(f'{r[a][0]:.3f} / {r[a][1]:.3f}'.rjust(16) for a in aggs), flush=True)
