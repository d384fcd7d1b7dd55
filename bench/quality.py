"""Ranking quality of `rank_nbs` against the original method, on a corpus with graded relevance judgments.

    python bench/quality.py ../shared/corpora ../shared/bench/dev_qrels.json --model all-MiniLM-L6-v2

Prints nDCG@10, MRR and recall@10 for nbsearch and, in the same run and with the same model, for the original method
(each notebook's raw `.ipynb` JSON scored whole by the model, as the blog post did with `CrossEncoder.rank`), and how
often stage 1's shortlist holds the notebooks judged relevant. `--model all-MiniLM-L6-v2` means the packaged model.
"""
import json, time, tempfile
from pathlib import Path
import numpy as np
from fastcore.script import call_parse
from nbsearch.core import *
from nbsearch.core import _doc_id, evaluate, setting_for, get_index
from nbsearch.evaluate import ndcg, mrr, recall, read_qrels
from nbsearch.search import candidates, shortlist, stage1_model, model_kind_of, budget
from nbsearch.models import load_model, offline_model, is_cross, embed, cross_scores, model_key, model_name


def original_rank(q, paths, m, raw, raw_vecs=None):
    "The blog post's method: every notebook's raw JSON scored whole by model `m` (which cuts it to its window)"
    if is_cross(m): s = np.array([o['score'] for o in sorted(m.rank(q, raw, show_progress_bar=False), key=lambda o: o['corpus_id'])])
    else: s = raw_vecs @ embed(m, [q])[0]
    return [paths[i] for i in np.argsort(-s)]


def shortlist_recall(qrels, paths, root, m, index, n_nbs=30, rerank=None):
    "Share of judged (query, notebook) pairs whose notebook is in the shortlist, as `rank_nbs` builds it"
    ix,st = get_index(index),setting_for(m)
    rp = ix.sync(paths, st)
    kind,dm = model_kind_of(m),stage1_model(m)
    b = budget(kind, kind=='bi' and dm is m, n_nbs, rerank)  # rank_nbs's sizes
    hit = []
    for q,rel in qrels.items():
        cands = candidates(q, ix, st, rp, dm, b.depth, all_below=b.all_below)
        kept = {_doc_id(c.path, root) for c in shortlist(cands, b.n_nbs, b.n_passages)}
        hit += [d in kept for d,g in rel.items() if g>0]
    return float(np.mean(hit)), len(hit)


@call_parse
def main(
    corpus:str, # Folder the judged doc ids are relative to
    qrels:str, # JSON file of graded judgments: {"queries": {query: {doc id: grade}}}
    model:str='all-MiniLM-L6-v2', # Model to rank with (hub id, local folder, or all-MiniLM-L6-v2 for the packaged one)
    subdirs:str='fastcore/nbs nbdev/nbs', # Folders of `corpus` to search (the judged part)
    index:str=None, # Index file (default: a fresh temporary one, so the build is measured too)
    rerank:int=None, # Passages the ranking model scores (default: `rank_nbs`'s)
    quick:bool=False, # Only nbsearch's own numbers (no original method, no run without stage 1, no shortlist recall)
    lexical_cap:int=64, # At most this many passages of one notebook from the lexical leg (`NbIndex.lexical`'s `per_nb`; 0: no limit)
):
    "Print nDCG@10, MRR and recall@10 of nbsearch and of the original method, and the shortlist's recall"
    if lexical_cap!=64:
        import nbsearch.index as I
        lex = I.NbIndex.lexical
        I.NbIndex.lexical = lambda self, *a, **k: lex(self, *a, **{'per_nb': lexical_cap or None, **k})
    qs = read_qrels(qrels)
    nbs = [Path(corpus)/s for s in subdirs.split()]
    m = load_model(offline_model() if model=='all-MiniLM-L6-v2' else model)
    paths = get_nb_paths(nbs)
    print(f'{len(qs)} queries, {len(paths)} notebooks, model {model_name(m)}')
    with tempfile.TemporaryDirectory() as d:
        index = index or Path(d)/'index.db'
        t = time.perf_counter(); ev = evaluate(qs, nbs, model=m, root=corpus, index=index, k=10, **({'rerank': rerank} if rerank else {})); t = time.perf_counter()-t
        if quick:
            mn = ev.mean
            print(f"nbsearch rank_nbs: nDCG@10 {mn['ndcg@10']:.3f} MRR {mn['mrr']:.3f} R@10 {mn['recall@10']:.3f}; {np.median([r['latency'] for r in ev.rows])*1000:.0f} ms median; {t:.0f} s")
            return
        import nbsearch.search as S
        was,S.deepen = getattr(S, 'deepen', None),None  # and a cross-encoder reads all of it
        try: whole = evaluate(qs, nbs, model=m, root=corpus, index=index, k=10, n_nbs=10**6, rerank=10**9)  # stage 1 keeps everything
        finally: S.deepen = was
        raw = [Path(p).read_text(encoding='utf-8') for p in paths]
        raw_vecs = None if is_cross(m) else embed(m, raw)  # a bi-encoder embeds each notebook once
        rows = []
        for q,rel in qs.items():
            ids = [_doc_id(p, corpus) for p in original_rank(q, paths, m, raw, raw_vecs)]
            rows.append((ndcg(ids, rel), mrr(ids, rel), recall(ids, rel)))
        sr,n = shortlist_recall(qs, paths, corpus, m, index, rerank=rerank)
    o = np.mean(rows, axis=0)
    print(f"\n{'method':28} {'nDCG@10':>8} {'MRR':>6} {'R@10':>6}")
    print(f"{'original (raw JSON)':28} {o[0]:8.3f} {o[1]:6.3f} {o[2]:6.3f}")
    mn = ev.mean
    print(f"{'nbsearch rank_nbs':28} {mn['ndcg@10']:8.3f} {mn['mrr']:6.3f} {mn['recall@10']:6.3f}")
    wm = whole.mean
    print(f"{'  same, without stage 1':28} {wm['ndcg@10']:8.3f} {wm['mrr']:6.3f} {wm['recall@10']:6.3f}   ({wm['latency']*1000:.0f} ms a query, against {mn['latency']*1000:.0f} ms)")
    print(f"\nshortlist recall: {sr:.3f} of {n} judged (query, notebook) pairs")
    print(f"warm query latency: {np.median([r['latency'] for r in ev.rows])*1000:.0f} ms median; whole evaluation {t:.0f} s")
