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

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--corpus', default='/work/shared/corpora'); ap.add_argument('--qrels', default='/work/shared/bench/dev_qrels.json')
    ap.add_argument('--analysis', action='store_true', help='print the per-query failure analysis of today\'s pipeline')
    ap.add_argument('--no-text-variants', action='store_true', help='skip the ideas that need passages embedded again')
    a = ap.parse_args()
    qs,m,W,FC,V,QV = setup(a.corpus, a.qrels)
    DW,DF = per_query(W, qs),per_query(FC, qs)
    if a.analysis: print(analysis(qs, W, V, QV, DW))
    BW,BF = run(qs, W, V, QV, DW, today),run(qs, FC, V, QV, DF, today)
    orc = lambda qd: {d: qs[qd.q].get(d, 0) + 1e-3*v for d,v in today(qd).items()}  # the judgments order the 30 kept notebooks
    print(f"ceiling: a perfect scorer of the 30 notebooks stage 1 keeps: whole {run(qs, W, V, QV, DW, orc)[:,0].mean():.3f}, fc+nbdev {run(qs, FC, V, QV, DF, orc)[:,0].mean():.3f}")
    print('\n| idea | value | whole nDCG MRR R@10 | fc+nbdev nDCG MRR | whole up/down | fc up/down | MiniLM scores |\n|---|---|---|---|---|---|---|')
    print(row('today (`nb_scores`, w=0.2, 200 passages)', BW, BF, BW, BF, '200 passages').replace(') |', ') | - |', 1))
    for fname,(pname,vals) in families(qs, m, W, FC, V, QV, DW, DF, not a.no_text_variants).items():
        Mw,Mf = [],[]
        for v,rule,cost in vals:
            w,f = run(qs, W, V, QV, DW, rule),run(qs, FC, V, QV, DF, rule)
            Mw.append(w[:,0]); Mf.append(f[:,0])
            print(row(fname, w, f, BW, BF, cost).replace(f'| {fname} |', f'| {fname} | {pname}={v} |', 1), flush=True)
        if len(vals)>1: print(f'| {fname} | leave-one-query-out choice of {pname} | {loo(Mw):.3f} | {loo(Mf):.3f} | | | |', flush=True)

if __name__=='__main__': main()
