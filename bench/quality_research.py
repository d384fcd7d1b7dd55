"""Research toward issue 9's quality targets: per-query failure analysis, and final-ranking ideas not tried before.

    python bench/quality_research.py                # ../shared/corpora, ../shared/bench/dev_qrels.json
    python bench/quality_research.py --analysis     # also print the per-query failure analysis of today's pipeline
    python bench/quality_research.py --ideas hubness maxsim own   # session 6: hubness correction, MaxSim late interaction, notebook spread

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

def twofold(M, n=50, seed=0):
    "Mean nDCG@10 over `n` random halvings of the queries: the parameter chosen on one half, measured on the other, both ways"
    M = np.asarray(M); rng = np.random.default_rng(seed); res = []
    for _ in range(n):
        h = rng.permutation(M.shape[1]) < M.shape[1]//2
        for a,b in ((h, ~h), (~h, h)): res.append(M[np.argmax(M[:, a].mean(1)), b].mean())
    return float(np.mean(res))

def loo(M):
    "Leave-one-query-out nDCG@10 of choosing a parameter: `M[p, q]` is query q's nDCG@10 under parameter p"
    M = np.asarray(M); tot = M.sum(1)
    return float(np.mean([M[np.argmax((tot-M[:,q])/(M.shape[1]-1)), q] for q in range(M.shape[1])]))

# ---------------------------------------------------------------- the ideas
def fused(qd, c, w=0.2):
    "Today's combination of notebook cosines `c` (`{doc: cos}`) with the notebook's best BM25 over the query's best"
    lex = nb_max(np.flatnonzero(qd.lex), qd.lex, qd.F.owner)
    top = max(lex.values(), default=0) or 1.
    return {d: v + w*lex.get(d, 0.)/top for d,v in c.items()}

def top_kept(qd, n):
    "Shortlisted passages plus every passage of the first `n` notebooks stage 1 kept"
    ks = set(qd.kept[:n])
    return np.union1d(qd.short, np.flatnonzero([o in ks for o in qd.F.owner])).astype(int)

def nb_rrf(qd, k):
    "Notebook-level reciprocal rank fusion of the MiniLM (best shortlisted cosine) and BM25 (best passage) rankings"
    F = qd.F
    c = ranked(nb_max(qd.short, qd.cos, F.owner)); l = [d for d in ranked(nb_max(np.flatnonzero(qd.lex), qd.lex, F.owner)) if d in set(c)]
    s = {}
    for r in (c, l):
        for i,d in enumerate(r): s[d] = s.get(d, 0)+1/(k+i+1)
    return s

def zfuse(qd, w):
    "z(best cosine) + w z(best BM25), z-scores over the notebooks scored"
    F = qd.F; c = nb_max(qd.short, qd.cos, F.owner); l = nb_max(np.flatnonzero(qd.lex), qd.lex, F.owner)
    ds = list(c); cv = np.array([c[d] for d in ds]); lv = np.array([l.get(d, 0) for d in ds])
    z = lambda x: (x-x.mean())/(x.std() or 1)
    return dict(zip(ds, z(cv) + w*z(lv)))

def families(qs, m, W, FC, V, QV, DW, DF, text_variants=True):
    "`{family: (parameter name, [(value, rule, cost)])}`; the first value of each family is today's rule or its nearest"
    u = short_union(W, FC, DW, DF)
    SH = {}
    def short_n(qd, n):
        k = (id(qd.F), qd.q, n)
        if k not in SH: SH[k] = reshortlist(qd.F, (DW if qd.F is W else DF)[qd.q], 30, n)
        return SH[k]
    NP = {id(F): {d: int((F.owner==d).sum()) for d in set(F.owner)} for F in (W, FC)}
    CEN = {}
    for F in (W, FC):
        for d in set(F.owner): v = V[F.vix[F.owner==d]].mean(0); CEN[(id(F), d)] = v/np.linalg.norm(v)
    fam = {
        'BM25 weight (today 0.2)': ('w', [(w, lambda qd, w=w: today(qd, w), '200 passages') for w in (0.2, 0.1, 0.15, 0.25, 0.3)]),
        'passages in the shortlist (today 200)': ('n', [(n, lambda qd, n=n: today(qd, pos=short_n(qd, n)), f'{n} passages') for n in (200, 100, 300, 400, 600, 1000)]),
        'MiniLM on every passage of the folder': ('-', [(0, lambda qd: today(qd, pos=np.arange(len(qd.F.ps))), 'every passage embedded')]),
        'shortlist + every passage of the first N kept notebooks': ('N', [(n, lambda qd, n=n: today(qd, pos=top_kept(qd, n)), f'200 + all of {n} nbs') for n in (0, 3, 5, 10, 15, 20, 30)]),
        'notebook RRF of MiniLM and BM25 rankings': ('k', [(k, lambda qd, k=k: nb_rrf(qd, k), '200 passages') for k in (1, 5, 20, 60)]),
        'z-score fusion z(cos) + w z(BM25)': ('w', [(w, lambda qd, w=w: zfuse(qd, w), '200 passages') for w in (0.2, 0.3, 0.5, 0.7)]),
        'passage-level fusion: max over passages of cos + w BM25/top': ('w', [(w, lambda qd, w=w: nb_max(qd.short, qd.cos + w*qd.lex/(qd.lex.max() or 1), qd.F.owner), '200 passages') for w in (0.1, 0.2, 0.3)]),
        '+ w x cosine of the notebook centroid (mean of its passage vectors)': ('w', [(w, lambda qd, w=w: {d: v + w*float(CEN[(id(qd.F), d)]@qd.qv) for d,v in today(qd).items()}, '200 passages') for w in (0, 0.05, 0.1, 0.2, 0.3)]),
        '- a log(passages in the notebook), every passage scored': ('a', [(a, lambda qd, a=a: {d: v - a*np.log(NP[id(qd.F)][d]) for d,v in today(qd, pos=np.arange(len(qd.F.ps))).items()}, 'every passage embedded') for a in (0, 0.005, 0.01, 0.02)]),
    }
    TW,LEAD = {},{}
    for F in (W, FC):  # twins: in how many other notebooks a passage has a near-copy (cosine > 0.9); lead: a notebook's passages in order
        X,n = V[F.vix],np.zeros(len(F.vix), int)
        for s0 in range(0, len(X), 1000):
            for i,r in enumerate(X[s0:s0+1000] @ X.T): n[s0+i] = len(set(F.owner[r>0.9]) - {F.owner[s0+i]})
        TW[id(F)] = np.minimum(n, 3)/3
        for j,d in enumerate(F.owner): LEAD.setdefault((id(F), d), []).append(j)
    fam['cos - a x (notebooks holding a near-copy of the passage, up to 3)/3'] = ('a', [(a, lambda qd, a=a: today(qd, cos=qd.cos - a*TW[id(qd.F)]), '200 passages') for a in (0, 0.02, 0.05, 0.1)])
    fam["shortlist + each kept notebook's first k passages"] = ('k', [(k, lambda qd, k=k: today(qd, pos=np.union1d(qd.short, [j for d in qd.kept for j in LEAD[(id(qd.F), d)][:k]]).astype(int)), f'200 + up to {30*k}') for k in (0, 1, 2, 3)])
    MU = {id(F): V[F.vix].mean(0) for F in (W, FC)}
    def centered(qd, a):  # cosine after subtracting a x the folder's mean passage vector from passages and query
        mu = a*MU[id(qd.F)]; X = V[qd.F.vix] - mu; q = qd.qv - mu
        return today(qd, cos=X @ q / np.linalg.norm(X, axis=1) / np.linalg.norm(q))
    fam["cosine of vectors centred on the folder's mean passage vector (a x mean subtracted)"] = ('a', [(a, lambda qd, a=a: centered(qd, a), '200 passages') for a in (0, 0.25, 0.5, 1.0)])
    if text_variants:
        for name,desc in (('noctx', 'passage text without its context line'), ('names', 'passage text + its code names split (lex_text)')):
            X = variant_vecs(m, W, u, name)
            fam[f'MiniLM fed the {desc}'] = ('how', [('today', today, '200 passages'),
                ('alone', lambda qd, X=X: today(qd, cos=X[qd.F.vix] @ qd.qv), '200 passages, re-embedded'),
                ('max with today', lambda qd, X=X: today(qd, cos=np.maximum(qd.cos, X[qd.F.vix] @ qd.qv)), '2 x 200 passages'),
                ('mean with today', lambda qd, X=X: today(qd, cos=(qd.cos + X[qd.F.vix] @ qd.qv)/2), '2 x 200 passages')])
        X64,cover = small_windows(m, W, u)
        def win(qd, how):
            F = qd.F; cos = qd.cos.copy()
            for j in qd.short:
                jw = F.vix[j]; s64 = X64[cover[jw]] @ qd.qv if cover[jw] else np.zeros(1)
                cos[j] = max(cos[j], s64.max()) if how=='max' else (cos[j] + s64.max())/2
            return today(qd, cos=cos)
        fam['64-token windows of the shortlisted passages beside the 128-token passage'] = ('how', [('today', today, '200 passages'),
            ('max', lambda qd: win(qd, 'max'), '200 + ~2x200 windows'), ('mean of the two maxima', lambda qd: win(qd, 'mean'), '200 + ~2x200 windows')])
    return fam


# ---------------------------------------------------------------- session 6: hubness correction (CSLS-style local scaling)
def hub_r(X, owner, ks, chunk=500):
    "`r[i, p]`: mean cosine of unit row `p` of `X` to its `ks[i]` nearest rows in other notebooks (`owner`); fewer when there are fewer"
    codes = np.unique(owner, return_inverse=True)[1]; K = min(max(ks), len(X))
    res = np.zeros((len(ks), len(X)), 'float32')
    for s0 in range(0, len(X), chunk):
        S_ = X[s0:s0+chunk] @ X.T
        S_[codes[s0:s0+chunk, None]==codes[None, :]] = np.nan  # same notebook: not a neighbour
        top = -np.sort(-np.partition(np.nan_to_num(S_, nan=-9.), -K, axis=1)[:, -K:], axis=1)
        top[top<-8] = np.nan
        for i,k in enumerate(ks): res[i, s0:s0+chunk] = np.nan_to_num(np.nanmean(top[:, :k], 1))
    return res

def folder_hubness(F, V, ks, cache='/tmp/quality3-hub'):
    "`hub_r` of every passage of folder `F` among the folder's passages, cached on disk"
    X = V[F.vix]
    key = hashlib.sha1(X.tobytes() + '\0'.join(F.owner).encode() + str(ks).encode()).hexdigest()[:16]
    fn = Path(f'{cache}-{key}.npy')
    if fn.exists(): return np.load(fn)
    t = time.time(); r = hub_r(X, F.owner, ks); np.save(fn, r); print(f'hubness of {len(X)} passages: {time.time()-t:.0f} s', flush=True)
    return r

def hubness_families(qs, W, FC, V, QV, DW, bs=(0.1, 0.2, 0.3, 0.5), ks=(5, 10, 20)):
    "Hubness-corrected scores: passage cos - b r(p), r over the folder or over the query's shortlist; notebook score - b r(nb)"
    R = {id(F): folder_hubness(F, V, ks) for F in (W, FC)}
    rr = {True: [], False: []}  # does r separate relevant from other notebooks among today's top 10? (r of each one's best shortlisted passage, k=10)
    for q,rel in qs.items():
        qd = QData(W, V, QV[q], DW[q]); best = {}
        for j in qd.short:
            if (d := W.owner[j]) not in best or qd.cos[j]>qd.cos[best[d]]: best[d] = j
        for d in ranked(today(qd))[:10]: rr[rel.get(d, 0)>0].append(R[id(W)][1][best[d]])
    print(f"hubness r (k=10) of the best passage of today's top-10 notebooks, whole folder: judged relevant {np.mean(rr[True]):.3f} ({len(rr[True])}), "
          f"others {np.mean(rr[False]):.3f} ({len(rr[False])})", flush=True)
    NBR = {}
    for F in (W, FC):  # a notebook's r: mean over its passages
        for i in range(len(ks)):
            r = R[id(F)][i]
            for d in set(F.owner): NBR[(id(F), i, d)] = float(r[F.owner==d].mean())
    LOC = {}
    def local(qd, i):  # r among the query's shortlisted passages only
        k = (id(qd.F), qd.q)
        if k not in LOC:
            LOC[k] = hub_r(V[qd.F.vix[qd.short]], qd.F.owner[qd.short], ks)
        c = qd.cos.copy(); return c, LOC[k][i]
    def short_corr(qd, b, i):
        c,r = local(qd, i); c[qd.short] = c[qd.short] - b*r; return today(qd, cos=c)
    def nb_best(qd, b, i):  # r of the notebook's best shortlisted passage (by cosine)
        F = qd.F; r = R[id(F)][i]; best = {}
        for j in qd.short:
            d = F.owner[j]
            if d not in best or qd.cos[j]>qd.cos[best[d]]: best[d] = j
        return {d: v - b*r[best[d]] for d,v in today(qd).items()}
    grid = lambda f, cost: [(0, today, cost)] + [(f'{b},k={k}', (lambda qd, b=b, i=i: f(qd, b, i)), cost) for b in bs for i,k in enumerate(ks)]
    return {
        'hubness: cos - b r(p), r(p) = mean cos to k nearest passages of other notebooks in the folder': ('b', grid(
            lambda qd, b, i: today(qd, cos=qd.cos - b*R[id(qd.F)][i]), '200 passages; r at index time')),
        'hubness: cos - b r(p), r(p) among the query\'s 200 shortlisted passages': ('b', grid(short_corr, '200 passages; 200x200 at query time')),
        'hubness, notebook level: score - b x mean r(p) of its passages': ('b', grid(
            lambda qd, b, i: {d: v - b*NBR[(id(qd.F), i, d)] for d,v in today(qd).items()}, '200 passages; r at index time')),
        'hubness, notebook level: score - b x r(best shortlisted passage)': ('b', grid(nb_best, '200 passages; r at index time')),
    }

# ---------------------------------------------------------------- session 6: late interaction (MaxSim over MiniLM token embeddings)
def token_embs(texts, name, cache='/tmp/quality3'):
    "Unit-length MiniLM token embeddings of `texts` (with [CLS] and [SEP], no padding): float16 rows and each text's offsets, cached"
    key = hashlib.sha1('\0'.join(texts).encode()).hexdigest()[:16]
    fn = Path(f'{cache}-tok-{name}-{key}.npz')
    if fn.exists(): z = np.load(fn); return z['E'], z['off']
    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(offline_model(), device='cpu')
    t = time.time(); print(f'token embeddings of {len(texts)} texts ({name}) ...', flush=True)
    es = st.encode(texts, output_value='token_embeddings', batch_size=32, convert_to_numpy=False, show_progress_bar=False)
    es = [e.float().numpy() for e in es]
    es = [e/np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12) for e in es]
    off = np.cumsum([0] + [len(e) for e in es]); E = np.concatenate(es).astype('float16')
    np.savez(fn, E=E, off=off); print(f'  {time.time()-t:.0f} s, {len(E)} tokens', flush=True)
    return E, off

def maxsim_table(W, upos, qs, name='passages'):
    "`{(q, with_specials): array over the whole folder's passages}`: mean over query tokens of the best passage token's cosine (nan off `upos`)"
    E,off = token_embs([W.ps[j].text for j in upos], name)
    QE,qoff = token_embs(list(qs), 'queries')
    QE = QE.astype('float32'); M = np.zeros((len(upos), len(QE)), 'float32')
    for s0 in range(0, len(upos), 200):
        s1 = min(s0+200, len(upos)); S_ = E[off[s0]:off[s1]].astype('float32') @ QE.T
        M[s0:s1] = np.maximum.reduceat(S_, off[s0:s1]-off[s0], axis=0)
    res = {}
    for qi,q in enumerate(qs):
        a,b = qoff[qi],qoff[qi+1]
        for sp,(lo,hi) in ((True, (a, b)), (False, (a+1, b-1))):
            v = np.full(len(W.ps), np.nan, 'float32'); v[upos] = M[:, lo:hi].mean(1); res[(q, sp)] = v
    return res

def maxsim_families(qs, W, FC, V, DW, DF, ws=(0.25, 0.5, 0.75, 1.0)):
    "Today's rule with the passage cosine replaced by (1-a) cos + a MaxSim, query tokens with or without [CLS]/[SEP]"
    u = short_union(W, FC, DW, DF)
    MS = maxsim_table(W, u, qs)
    E,off = token_embs([W.ps[j].text for j in u], 'passages')
    from sentence_transformers import SentenceTransformer  # check on 20 passages: raw token embeddings mean-pooled = the passage vectors, normalised = the cache
    st = SentenceTransformer(offline_model(), device='cpu'); idx = list(range(0, len(u), len(u)//20))[:20]
    raw = [e.float().numpy() for e in st.encode([W.ps[u[i]].text for i in idx], output_value='token_embeddings', convert_to_numpy=False, show_progress_bar=False)]
    pool = min(float((v := e.mean(0))/np.linalg.norm(v) @ V[u[i]]) for e,i in zip(raw, idx))
    tok = min(float(((e/np.linalg.norm(e, axis=1, keepdims=True)) * E[off[i]:off[i+1]].astype('float32')).sum(1).min()) for e,i in zip(raw, idx))
    print(f'check on 20 passages: cosine of mean-pooled token embeddings and the passage vectors >= {pool:.4f}; of cached and fresh token vectors >= {tok:.4f}', flush=True)
    mix = lambda qd, a, sp: today(qd, cos=(1-a)*qd.cos + a*MS[(qd.q, sp)][qd.F.vix])
    vals = [(0, today, '200 passages')] + [(f'{a},{"with" if sp else "no"} CLS/SEP', (lambda qd, a=a, sp=sp: mix(qd, a, sp)), '200 passages, token embeddings')
                                          for sp in (False, True) for a in ws]
    fam = {'late interaction: (1-a) cos + a MaxSim(query tokens, passage tokens), then today\'s rule': ('a', vals)}
    for sp in (True, False):
        fam[f'MaxSim (query {"with" if sp else "without"} [CLS]/[SEP]) instead of cos, + w BM25/top (today: cos + 0.2 BM25/top)'] = ('w', [(0.2, today, '200 passages')] + [
            (w, (lambda qd, sp=sp, w=w: today(qd, w, cos=MS[(qd.q, sp)][qd.F.vix])), '200 passages, token embeddings') for w in (0, 0.05, 0.1, 0.15, 0.2)])
    # storage: the same MaxSim (with [CLS]/[SEP], no BM25) from token vectors kept as int8 (one scale per token)
    Ef = E.astype('float32'); sc = np.abs(Ef).max(1, keepdims=True)/127; E8 = (np.round(Ef/sc)*sc).astype('float32')
    QE,qoff = token_embs(list(qs), 'queries'); QE = QE.astype('float32')
    M8 = np.maximum.reduceat(E8 @ QE.T, off[:-1], axis=0)
    MS8 = {}
    for qi,q in enumerate(qs):
        v = np.full(len(W.ps), np.nan, 'float32'); v[u] = M8[:, qoff[qi]:qoff[qi+1]].mean(1); MS8[q] = v
    # time of the MaxSim arithmetic per query on its 200 shortlisted passages from int8 token vectors (dequantise, product, max, mean), median of the 33 queries
    I8,SC = np.round(Ef/sc).astype('int8'),sc.astype('float32'); at = {int(j): i for i,j in enumerate(u)}; ts = []
    for qi,q in enumerate(qs):
        rows = [at[W.pos[i]] for i in DW[q]['short']]
        t = time.perf_counter()
        x = [float(((I8[off[i]:off[i+1]].astype('float32')*SC[off[i]:off[i+1]]) @ QE[qoff[qi]:qoff[qi+1]].T).max(0).mean()) for i in rows]
        ts.append(time.perf_counter()-t)
    print(f'MaxSim arithmetic for 200 passages from int8 token vectors: median {1e3*np.median(ts):.1f} ms per query (one thread, no I/O); '
          f'{len(E)/len(u):.0f} tokens per passage on average', flush=True)
    fam['MaxSim (query with [CLS]/[SEP]), no BM25: token vectors stored as'] = ('how', [('today', today, '200 passages'),
        ('float16', lambda qd: today(qd, 0, cos=MS[(qd.q, True)][qd.F.vix]), f'{E.shape[1]*2} B/token'),
        ('int8', lambda qd: today(qd, 0, cos=MS8[qd.q][qd.F.vix]), f'{E.shape[1]+4} B/token')])
    # shortlist size for MaxSim: 100 passages (a subset of the 200) or 300 (token embeddings of the passages the 200 lack)
    SHN = {(id(F), q, n): reshortlist(F, D[q], 30, n) for F,D in ((W, DW), (FC, DF)) for q in qs for n in (100, 300)}
    VIX = {id(F): F.vix for F in (W, FC)}
    ext = np.array(sorted({int(VIX[f][j]) for (f,q,n),ps in SHN.items() for j in ps} - set(u.tolist())))
    MX = maxsim_table(W, ext, qs, 'passages-extra')
    MSN = {k: np.where(np.isnan(v), MX[k], v) for k,v in MS.items()}
    fam['MaxSim (query with [CLS]/[SEP]), no BM25, on n shortlisted passages'] = ('n', [('today', today, '200 passages')] + [
        (n, (lambda qd, n=n: today(qd, 0, cos=MSN[(qd.q, True)][qd.F.vix], pos=SHN[(id(qd.F), qd.q, n)] if n!=200 else None)), f'{n} passages, token embeddings') for n in (100, 200, 300)])
    return fam

# ---------------------------------------------------------------- session 6: own idea
def own_families(W, FC, V, bs=(0.05, 0.1, 0.2, 0.3)):
    "Notebook spread: 1 - |mean of its unit passage vectors| (a broad notebook's passages point many ways); score - b spread"
    SP = {}
    for F in (W, FC):
        for d in set(F.owner): SP[(id(F), d)] = 1 - float(np.linalg.norm(V[F.vix[F.owner==d]].mean(0)))
    return {'notebook spread: score - b (1 - norm of the mean unit passage vector)': ('b', [(0, today, '200 passages')] + [
        (b, (lambda qd, b=b: {d: v - b*SP[(id(qd.F), d)] for d,v in today(qd).items()}), '200 passages; one number per notebook') for b in bs])}

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--corpus', default='/work/shared/corpora'); ap.add_argument('--qrels', default='/work/shared/bench/dev_qrels.json')
    ap.add_argument('--analysis', action='store_true', help='print the per-query failure analysis of today\'s pipeline')
    ap.add_argument('--no-text-variants', action='store_true', help='skip the ideas that need passages embedded again')
    ap.add_argument('--ideas', nargs='+', default=['old'], choices=['old', 'hubness', 'maxsim', 'own'],
                    help="which ideas: 'old' (sessions before 6), 'hubness', 'maxsim', 'own' (session 6)")
    ap.add_argument('--index', default='/tmp/quality2-index.db', help='the index file the script uses')
    a = ap.parse_args()
    qs,m,W,FC,V,QV = setup(a.corpus, a.qrels, a.index)
    DW,DF = per_query(W, qs),per_query(FC, qs)
    if a.analysis: print(analysis(qs, W, V, QV, DW))
    BW,BF = run(qs, W, V, QV, DW, today),run(qs, FC, V, QV, DF, today)
    orc = lambda qd: {d: qs[qd.q].get(d, 0) + 1e-3*v for d,v in today(qd).items()}  # the judgments order the 30 kept notebooks
    print(f"ceiling: a perfect scorer of the 30 notebooks stage 1 keeps: whole {run(qs, W, V, QV, DW, orc)[:,0].mean():.3f}, fc+nbdev {run(qs, FC, V, QV, DF, orc)[:,0].mean():.3f}")
    print('\n| idea | value | whole nDCG MRR R@10 | fc+nbdev nDCG MRR | whole up/down | fc up/down | MiniLM scores |\n|---|---|---|---|---|---|---|')
    print(row('today (`nb_scores`, w=0.2, 200 passages)', BW, BF, BW, BF, '200 passages').replace(') |', ') | - |', 1))
    fams = families(qs, m, W, FC, V, QV, DW, DF, not a.no_text_variants) if 'old' in a.ideas else {}
    if 'hubness' in a.ideas: fams.update(hubness_families(qs, W, FC, V, QV, DW))
    if 'maxsim' in a.ideas: fams.update(maxsim_families(qs, W, FC, V, DW, DF))
    if 'own' in a.ideas: fams.update(own_families(W, FC, V))
    ALL = {}
    for fname,(pname,vals) in fams.items():
        Mw,Mf = [],[]
        for v,rule,cost in vals:
            w,f = run(qs, W, V, QV, DW, rule),run(qs, FC, V, QV, DF, rule)
            Mw.append(w[:,0]); Mf.append(f[:,0])
            print(row(fname, w, f, BW, BF, cost).replace(f'| {fname} |', f'| {fname} | {pname}={v} |', 1), flush=True)
        if len(vals)>1:
            print(f'| {fname} | leave-one-query-out choice of {pname} | {loo(Mw):.3f} | {loo(Mf):.3f} | | | |', flush=True)
            print(f'| {fname} | 2-fold choice of {pname} (50 random halvings) | {twofold(Mw):.3f} | {twofold(Mf):.3f} | | | |', flush=True)
        ALL[fname] = (Mw, Mf)
    if 'maxsim' in a.ideas:  # one choice among today, and MaxSim with or without [CLS]/[SEP] at every BM25 weight
        J = [f for f in ALL if f.startswith('MaxSim (query w')]
        Mw,Mf = ALL[J[0]][0] + ALL[J[1]][0][1:], ALL[J[0]][1] + ALL[J[1]][1][1:]
        print(f'| MaxSim instead of cos, query with or without [CLS]/[SEP], + w BM25/top | leave-one-query-out choice of both | {loo(Mw):.3f} | {loo(Mf):.3f} | | | |')
        print(f'| MaxSim instead of cos, query with or without [CLS]/[SEP], + w BM25/top | 2-fold choice of both (50 random halvings) | {twofold(Mw):.3f} | {twofold(Mf):.3f} | | | |')

if __name__=='__main__': main()
