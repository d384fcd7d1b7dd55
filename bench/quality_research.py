"""Research toward issue 9's quality targets: per-query failure analysis, and final-ranking ideas not tried before.

    python bench/quality_research.py                # ../shared/corpora, ../shared/bench/dev_qrels.json
    python bench/quality_research.py --analysis     # also print the per-query failure analysis of today's pipeline

The library's own stages (`nbsearch.search`: index, `candidates` with the static dense leg, `shortlist`) run on the
whole `corpora` folder and on fastcore/+nbdev/ alone, in an index under `/tmp/quality2-index.db`. Every passage is
also embedded once with the packaged all-MiniLM-L6-v2 (and, for variants of the passage text, once per variant),
cached as `.npy` files under `/tmp/quality2-*` (a cold run embeds ~11k passages per variant: ~7 minutes each on 2
cores). Today's pipeline is reproduced exactly from those vectors (checked against `bench/quality.py`), then each idea
changes one thing. For each: nDCG@10 / MRR / recall@10 on both folders, queries up/down against today on the whole
folder, and the spread over the idea's parameter.
"""
import json, hashlib, time, argparse, re
from pathlib import Path
import numpy as np
import nbsearch.search as S
from nbsearch.read import get_nb_paths
from nbsearch.index import NbIndex
from nbsearch.evaluate import ndcg, mrr, recall, read_qrels
from nbsearch.tokens import lex_text, code_tokens, query_tokens, stop_words
from nbsearch.models import load_model, offline_model, embed

# ---------------------------------------------------------------- data
def _doc_id(p, root): return Path(p).resolve().relative_to(Path(root).resolve()).with_suffix('').as_posix()

def cached_embed(m, name, texts, cache='/tmp/quality2'):
    "MiniLM embeddings of `texts`, cached on disk by content (also reads the older `/tmp/quality-ablation` cache)"
    key = hashlib.sha1('\0'.join(texts).encode()).hexdigest()[:16]
    for fn in (Path(f'{cache}-{name}-{key}.npy'), Path(f'/tmp/quality-ablation-{name}-{key}.npy')):
        if fn.exists(): return np.load(fn)
    fn = Path(f'{cache}-{name}-{key}.npy')
    t = time.time(); print(f'embedding {len(texts)} texts ({name}) ...', flush=True)
    v = np.concatenate([embed(m, texts[i:i+256]) for i in range(0, len(texts), 256)])
    np.save(fn, v); print(f'  {time.time()-t:.0f} s', flush=True)
    return v

class Folder:
    "The library's index and stage 1 over the notebooks of `subdirs`, and MiniLM vectors of every passage"
    def __init__(self, ix, st, corpus, subdirs, m, dm):
        self.ix,self.st,self.corpus,self.m,self.dm = ix,st,corpus,m,dm
        self.paths = get_nb_paths([Path(corpus)/s for s in subdirs])
        self.rp = ix.sync(self.paths, st)
        self.ps = ix.passages(st, self.rp)
        self.pos = {p.id:i for i,p in enumerate(self.ps)}
        self.owner = np.array([_doc_id(p.path, corpus) for p in self.ps])

def stage1(F, q):
    "The library's stage 1 and 2 for `q` (static dense leg, 512 deep; 30 notebooks, 200 passages)"
    cands = S.candidates(q, F.ix, F.st, F.rp, F.dm, 512)
    return cands, S.shortlist(cands, 30, 200)

# ---------------------------------------------------------------- final rules
def nb_rank(short_ids, cos, lex_best, F, w=0.2):
    "Today's `nb_scores`: best cosine among shortlisted passages + w * best BM25 / query's best BM25"
    best = {}
    for i in short_ids:
        d = F.owner[F.pos[i]]; best[d] = max(best.get(d, -9), cos[F.pos[i]])
    top = max(lex_best.values(), default=0) or 1.
    sc = {d: c + w*lex_best.get(d, 0.)/top for d,c in best.items()}
    return sorted(sc, key=lambda d: (-sc[d], d)), sc

def evaluate_rule(qs, per_q, f):
    "Per-query (nDCG@10, MRR, R@10) of ranking function `f(q, data) -> ranked doc ids`"
    return np.array([[ndcg(r, rel), mrr(r, rel), recall(r, rel)] for q,rel in qs.items() for r in [f(q, per_q[q])]])

# ---------------------------------------------------------------- setup
def setup(corpus, qrels, index='/tmp/quality2-index.db'):
    qs = read_qrels(qrels)
    m = load_model(offline_model())
    import torch; torch.set_num_threads(1)
    ix,st = NbIndex(index),S.setting_for(m)
    dm = S.stage1_model(m)
    W = Folder(ix, st, corpus, ['.'], m, dm)
    FC = Folder(ix, st, corpus, ['fastcore/nbs', 'nbdev/nbs'], m, dm)
    V = cached_embed(m, 'minilm', [p.text for p in W.ps])
    Q = cached_embed(m, 'queries', list(qs))
    for F in (W, FC): F.vix = np.array([W.pos[p.id] for p in F.ps])
    return qs, m, W, FC, V, dict(zip(qs, Q))

def per_query(F, qs, cache='/tmp/quality2-stage1'):
    "Stage 1+2 of the library for every query on folder `F`: `{q: dict(cands=[(id, lex_rank, lex_score, dense_rank)], short=[id])}`, cached"
    key = hashlib.sha1(json.dumps([list(qs), [p.id for p in F.ps], sorted(F.owner.tolist())]).encode()).hexdigest()[:16]
    fn = Path(f'{cache}-{key}.json')
    if fn.exists(): return json.loads(fn.read_text())
    res = {}
    for q in qs:
        cands,short = stage1(F, q)
        res[q] = dict(cands=[(c.id, c.lex_rank, c.lex_score, c.dense_rank) for c in cands], short=[c.id for c in short])
    fn.write_text(json.dumps(res))
    return res

# ---------------------------------------------------------------- per-query evidence, in arrays
class QData:
    "Everything a final rule may use for query `q` on folder `F`: cosine of every passage, stage-1 legs, the shortlist"
    def __init__(self, F, V, qv, d, q=None):
        self.F,self.qv,self.q = F,qv,q
        self.cos = V[F.vix] @ qv                                 # MiniLM cosine of every passage of the folder
        self.short = np.array([F.pos[i] for i in d['short']])    # shortlisted passage positions
        self.lex = np.zeros(len(F.ps)); self.lrank = np.full(len(F.ps), 10**6)
        self.drank = np.full(len(F.ps), 10**6)
        for i,lr,ls,dr in d['cands']:
            j = F.pos[i]
            if lr is not None: self.lex[j],self.lrank[j] = ls,lr
            if dr is not None: self.drank[j] = dr
        self.kept = list(dict.fromkeys(F.owner[self.short]))     # notebooks kept by stage 1

def nb_max(pos, vals, owner):
    "`{doc: max of vals}` over passage positions `pos`"
    res = {}
    for j,v in zip(pos, vals[pos]):
        d = owner[j]
        if v>res.get(d, -1e9): res[d] = v
    return res

def ranked(sc): return sorted(sc, key=lambda d: (-sc[d], d))

def today(qd, w=0.2, pos=None, cos=None):
    "Today's final rule on passages `pos` (default: the shortlist), with cosines `cos` (default: MiniLM's)"
    F = qd.F
    pos = qd.short if pos is None else pos
    best = nb_max(pos, qd.cos if cos is None else cos, F.owner)
    lex = nb_max(np.flatnonzero(qd.lex), qd.lex, F.owner)
    top = max(lex.values(), default=0) or 1.
    return {d: c + w*lex.get(d, 0.)/top for d,c in best.items()}

def analysis(qs, W, V, QV, D):
    "Per query with nDCG@10 < 1 on the whole folder: who wins, where the judged notebooks rank, and where they are lost"
    lines = []
    for q,rel in qs.items():
        qd = QData(W, V, QV[q], D[q])
        r = ranked(today(qd))
        n = ndcg(r, rel)
        if n>=0.9999: continue
        allc = ranked(nb_max(np.arange(len(W.ps)), qd.cos, W.owner))       # MiniLM on every passage, no BM25
        lexr = ranked(nb_max(np.flatnonzero(qd.lex), qd.lex, W.owner))
        full = ranked(today(qd, pos=np.arange(len(W.ps))))                 # today's rule, every passage scored
        lines.append(f'\n{n:.2f}  {q!r}   top: {", ".join(r[:3])}')
        for d,g in sorted(rel.items(), key=lambda o: -o[1]):
            if g<=0: continue
            st = 'final' if d in qd.kept else 'stage1'
            bp = np.flatnonzero(W.owner==d); best = bp[np.argmax(qd.cos[bp])] if len(bp) else None
            miss = '' if best is None or best in set(qd.short) else ' (best-cos passage not shortlisted)'
            f = lambda o: o.index(d)+1 if d in o else '-'
            lines.append(f'   g{g} {d:40} final {f(r):>3}  every-passage {f(full):>3}  cos-only {f(allc):>3}  bm25 {f(lexr):>3}  kept {d in qd.kept}{miss}')
    return '\n'.join(lines)

# ---------------------------------------------------------------- measuring a rule on both folders
def run(qs, F, V, QV, D, rule):
    "Per-query (nDCG@10, MRR, R@10) of `rule(qd) -> {doc: score}` on folder `F`"
    res,known = [],set(F.owner)
    for q,rel in qs.items():
        rel = {d:g for d,g in rel.items() if d in known}  # as `evaluate`: judged notebooks outside the folder are left out
        if not any(g>0 for g in rel.values()): continue
        r = ranked(rule(QData(F, V, QV[q], D[q], q)))
        res.append((ndcg(r, rel), mrr(r, rel), recall(r, rel)))
    return np.array(res)

def updown(a, b, eps=1e-9):
    "Queries whose nDCG@10 goes up and down from per-query results `b` to `a`"
    d = a[:,0]-b[:,0]
    return int((d>eps).sum()), int((d<-eps).sum())

def row(name, w, fc, bw, bfc, cost=''):
    u,d = updown(w, bw); u2,d2 = updown(fc, bfc)
    mw,mf = w.mean(0),fc.mean(0)
    return f'| {name} | {mw[0]:.3f} {mw[1]:.3f} {mw[2]:.3f} | {mf[0]:.3f} {mf[1]:.3f} | +{u}/-{d} | +{u2}/-{d2} | {cost} |'

# ---------------------------------------------------------------- passage-text variants, embedded for shortlisted passages only
def short_union(W, FC, DW, DF):
    "Positions (in the whole folder's passages) of every passage shortlisted for some query on either folder"
    u = {W.pos[i] for D in (DW, DF) for d in D.values() for i in d['short']}
    return np.array(sorted(u))

variants = {
    'noctx': lambda p: '\n'.join(p.parts),                      # no context line (title, subtitle, heading)
    'names': lambda p: lex_text(p.text),                        # the text, then its snake/camel/dotted names split into words
}

def variant_vecs(m, W, upos, name):
    "A copy of the MiniLM matrix whose rows `upos` hold embeddings of passage-text variant `name` (others: zeros)"
    v = cached_embed(m, 'var-'+name, [variants[name](W.ps[j]) for j in upos])
    res = np.zeros((len(W.ps), v.shape[1]), 'float32'); res[upos] = v
    return res

def reshortlist(F, d, n_nbs=30, n_passages=200):
    "The library's `shortlist` of stage-1 candidates `d['cands']` with other sizes: passage positions"
    cs = [S.Candidate(i, F.ps[F.pos[i]].path, '', [], [], '', [], lr, ls, dr, None) for i,lr,ls,dr in d['cands']]
    return np.array([F.pos[c.id] for c in S.shortlist(cs, n_nbs, n_passages)])

# ---------------------------------------------------------------- 64-token windows beside the 128-token passages
def small_windows(m, W, upos, n=64):
    "The `n`-token passages of the whole folder covering the cells of shortlisted passages `upos`: their MiniLM vectors, and for each 128-token passage position the rows of its windows"
    st = S.setting_for(m, max_tokens=n, overlap=n//4)
    rp = W.ix.sync(W.paths, st)
    ps = W.ix.passages(st, rp)
    by_cell = {}
    for k,p in enumerate(ps):
        for c in p.cells: by_cell.setdefault((p.path, c), []).append(k)
    cover = {int(j): sorted({k for c in W.ps[j].cells for k in by_cell.get((W.ps[j].path, c), [])}) for j in upos}
    need = sorted({k for v in cover.values() for k in v})
    v = cached_embed(m, f'win{n}', [ps[k].text for k in need])
    row = {k:i for i,k in enumerate(need)}
    return v, {j:[row[k] for k in ks] for j,ks in cover.items()}
