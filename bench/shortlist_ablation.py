"""Stage 2 variants in the library, on the whole `corpora` folder, all-MiniLM-L6-v2, 256 passages scored, `bm25_weight` 0.2:
which notebooks are kept (each leg's top half first, `union`, or each leg's top 3, `guard3`, then RRF) and how the passages
are chosen (`quota`: the same number per notebook, by fused passage rank; `best`: each notebook's best, then one fused order).

    python bench/shortlist_ablation.py ../shared/corpora ../shared/bench/dev_qrels.json --index /tmp/shortlist-ablation.db
"""
import sys, numpy as np
from pathlib import Path
import nbsearch.search as S
from nbsearch.core import evaluate
from nbsearch.evaluate import read_qrels
from nbsearch.models import load_model, offline_model
from fastcore.script import call_parse
def mk(nbsel, pas):
    def shortlist(cands, n_nbs=30, n_passages=200):
        legs = [o for o in (S._leg(cands, lambda c: c.lex_rank), S._leg(cands, lambda c: c.dense_rank)) if o]
        nb_orders = [list(dict.fromkeys(c.path for c in l)) for l in legs]
        fused = S._rrf(nb_orders)
        first = S._interleave(nb_orders, n_nbs//2) if nbsel=='union' else [p for o in nb_orders for p in o[:3]]
        kept = list(dict.fromkeys(first + sorted(fused, key=lambda p: (-fused[p], p)) + sorted({c.path for c in cands})))[:n_nbs]
        pr = S._rrf([[c.id for c in l] for l in legs])
        by_nb = {p:[] for p in kept}
        for c in sorted(cands, key=lambda c: (-pr.get(c.id, 0), c.path, c.id)):
            if c.path in by_nb: by_nb[c.path].append(c)
        if n_passages is None: return [c for v in by_nb.values() for c in v]
        if pas=='quota':
            each = max(n_passages//max(len(kept), 1), 1)
            return [c for v in by_nb.values() for c in v[:each]]
        order = [v[0] for v in by_nb.values() if v] + [c for v in by_nb.values() for c in v[1:]]
        chosen = {c.id for c in order[:n_passages]}
        return [c for v in by_nb.values() for c in v if c.id in chosen]
    return shortlist
@call_parse
def main(
    corpus:str, # Folder of notebooks the judged ids are relative to (searched whole)
    qrels:str, # JSON file of graded judgments
    index:str='/tmp/shortlist-ablation.db', # Index file to use (built on the first query if missing)
):
    "nDCG@10 / MRR / recall@10 of each stage-2 variant"
    qs,m,orig = read_qrels(qrels),load_model(offline_model()),S.shortlist
    try:
        for nbsel,pas in [('union','quota'), ('guard3','best'), ('guard3','quota')]:
            S.shortlist = mk(nbsel, pas)
            ev = evaluate(qs, [Path(corpus)], model=m, root=corpus, index=index, k=10, rerank=256)
            mn = ev.mean; print(f"{nbsel} {pas} w=0.2 rerank=256: {mn['ndcg@10']:.3f} {mn['mrr']:.3f} {mn['recall@10']:.3f}", flush=True)
    finally: S.shortlist = orig
