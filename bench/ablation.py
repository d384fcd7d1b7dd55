"""Ablation of notebook-ranking evidence and of stage-1 shortlists, on a judged folder with distractors.

    python bench/ablation.py --corpora ../shared/corpora --qrels ../shared/bench/dev_qrels.json

Standalone: it cuts every notebook of `--corpora` into the passages nbsearch uses (MiniLM tokenizer, 128 tokens,
context lines), embeds each passage once with the packaged all-MiniLM-L6-v2 (cached under `--cache`, minutes on 2
cores the first time) and, with the cheap static model of stage 1 (`--static`, by default the packaged `static-minilm`). BM25 is SQLite
FTS5 in memory over the passages of the searched folder only (the library's tokens: `lex_text`, `query_tokens`).
Then, for the whole folder and for fastcore/+nbdev/ alone, it prints nDCG@10 / MRR / recall@10 of
- each final-ranking rule, adding one piece of evidence at a time, with MiniLM on every passage ("all") and with
  MiniLM only on stage 1's passage shortlist ("short");
- stage-1 notebook shortlists (RRF, union of each leg's top-m, RRF plus each leg's top-3) by recall@30 of the judged
  notebooks;
- leave-one-query-out and 2-fold estimates of the tuned weights, and the curve around them.
"""
import json, sqlite3, hashlib, argparse, itertools, time
from pathlib import Path
import numpy as np
from nbsearch.tokens import lex_text, code_tokens, stop_words, query_tokens as _query_tokens

# ---------------------------------------------------------------- metrics (as in nbsearch.core)
def ndcg(ranked, rel, k=10):
    dcg = sum((2**rel.get(d, 0)-1)/np.log2(i+2) for i,d in enumerate(ranked[:k]))
    idcg = sum((2**g-1)/np.log2(i+2) for i,g in enumerate(sorted(rel.values(), reverse=True)[:k]))
    return float(dcg/idcg) if idcg else 0.

def mrr(ranked, rel): return next((1/(i+1) for i,d in enumerate(ranked) if rel.get(d, 0)>0), 0.)

def recall(ranked, rel, k=10):
    r = [d for d,g in rel.items() if g>0]
    return len(set(ranked[:k]) & set(r))/len(r) if r else 0.

# ---------------------------------------------------------------- corpus: passages and embeddings, cached
def _titleline(d): return f"{d['title']}: {d['subtitle']}" if d['subtitle'] else d['title']
def _headline(d): return '; '.join([_titleline(d)] + d['heads'])

def load_corpus(corpora, cache, static=None):
    "Docs, passages, MiniLM vectors of passages/title lines/heading lines, and static vectors (or None)"
    from nbsearch.read import get_nb_paths, read_nb, passages, headings
    from nbsearch.models import load_model, offline_model, window, model_tok, embed
    m = load_model(offline_model())
    tok,n = model_tok(m),window(m, 128)
    root,docs,ps = Path(corpora),[],[]
    for p in get_nb_paths(root):
        nb = read_nb(p)
        did = p.resolve().relative_to(root.resolve()).with_suffix('').as_posix()
        hs = [h for c in nb.cells if c.cell_type=='markdown' for l,h in headings(c.source) if l>1]
        docs.append(dict(id=did, title=nb.title, subtitle=nb.subtitle, heads=hs))
        ps += [dict(doc=len(docs)-1, text=o.text) for o in passages(nb, tok, n, 32)]
    def cached(name, texts, f):
        key = hashlib.sha1('\0'.join(texts).encode()).hexdigest()[:16]
        fn = Path(f'{cache}-{name}-{key}.npy')
        if fn.exists(): return np.load(fn)
        t = time.time(); print(f'embedding {len(texts)} texts ({name}) ...', flush=True)
        v = np.concatenate([f(texts[i:i+256]) for i in range(0, len(texts), 256)]) if texts else np.zeros((0, 384), 'float32')
        np.save(fn, v); print(f'  {time.time()-t:.0f} s', flush=True)
        return v
    import torch; torch.set_num_threads(1)
    mini = lambda ts: embed(m, ts)
    texts = [o['text'] for o in ps]
    V = cached('minilm', texts, mini)
    TV = cached('minilm-title', [_titleline(d) for d in docs], mini)
    HV = cached('minilm-heads', [_headline(d) for d in docs], mini)
    S,sm = None,None
    if static:
        from nbsearch.static import load_static
        sm = load_static(static)
        def st(ts): return sm.embed(list(ts))
        S = cached('static-'+hashlib.sha1(str(Path(static).resolve()).encode()).hexdigest()[:8], texts, st)
    return dict(docs=docs, ps=ps, V=V, TV=TV, HV=HV, S=S, qmini=mini, qstatic=(st if static else None))

# ---------------------------------------------------------------- BM25 over one folder's passages (FTS5 in memory)
_fts = "create virtual table {} using fts5 (toks, tokenize=\"porter unicode61 tokenchars '_'\")"

class Lex:
    "BM25 over passages `idx` (and over whole notebooks) of the corpus, statistics from those passages only"
    def __init__(self, C, idx):
        self.db,self.idx = sqlite3.connect(':memory:'),np.asarray(idx)
        for t in ('lex', 'nblex', 'temp.qtok'): self.db.execute(_fts.format(t))
        self.db.execute("create virtual table temp.qvocab using fts5vocab (temp, 'qtok', 'instance')")
        self.db.execute("create virtual table temp.lexvocab using fts5vocab (main, 'lex', 'row')")
        lt = {int(i):lex_text(C['ps'][i]['text']) for i in self.idx}
        self.db.executemany('insert into lex (rowid, toks) values (?,?)', lt.items())
        byd = {}
        for i in self.idx: byd.setdefault(C['ps'][i]['doc'], []).append(lt[int(i)])
        self.db.executemany('insert into nblex (rowid, toks) values (?,?)', [(d, '\n'.join(v)) for d,v in byd.items()])

    def match(self, q, max_rows=20_000):
        "The FTS5 query nbsearch's index builds for `q` (as `NbIndex._match`)"
        toks = _query_tokens(q)
        self.db.execute('delete from temp.qtok')
        self.db.executemany('insert into temp.qtok (rowid, toks) values (?,?)', list(enumerate(toks)))
        stem = {toks[i]:t for i,t in self.db.execute('select doc, term from temp.qvocab')}
        ss = list(set(stem.values()))
        df = dict(self.db.execute(f"select term, doc from temp.lexvocab where term in ({','.join('?'*len(ss))})", ss).fetchall())
        keep,rows = [],0
        for t in sorted(toks, key=lambda t: df.get(stem.get(t), 0)):
            if keep and rows+df.get(stem.get(t), 0)>max_rows: break
            keep.append(t); rows += df.get(stem.get(t), 0)
        return ' OR '.join(f'"{t}"' for t in sorted(keep, key=toks.index)), set(stem.values())

    def __call__(self, q, table='lex'):
        "`{rowid: BM25}` (higher better) of passages (`lex`) or notebooks (`nblex`) matching `q`"
        mq,_ = self.match(q)
        return dict(self.db.execute(f'select rowid, -bm25({table}) from {table} where {table} match ?', (mq,)).fetchall())

    def stems(self, s):
        "Porter stems of the code tokens of `s` (the query side of title overlap)"
        toks = list(dict.fromkeys(code_tokens(s)))
        self.db.execute('delete from temp.qtok')
        self.db.executemany('insert into temp.qtok (rowid, toks) values (?,?)', list(enumerate(toks)))
        return {t for _,t in self.db.execute('select doc, term from temp.qvocab')}

# ---------------------------------------------------------------- stage 1
def nb_order(pass_rank, doc_of):
    "Notebook ranking from a passage ranking: each notebook at its best passage"
    return list(dict.fromkeys(doc_of[i] for i in pass_rank))

def rrf(rankings, k=60):
    res = {}
    for r in rankings:
        for i,o in enumerate(r): res[o] = res.get(o, 0) + 1/(k+i+1)
    return res

def shortlist_nbs(legs, n_nbs=30, how='rrf', m=3):
    "Notebooks kept by stage 1 from the legs' notebook rankings"
    f = rrf(legs)
    fused = sorted(f, key=lambda o: -f[o])
    if how=='rrf': return fused[:n_nbs]
    if how=='union':  # each leg's top n_nbs/len(legs), interleaved, then RRF fills
        res = list(dict.fromkeys(o for t in itertools.zip_longest(*[l[:n_nbs//len(legs)] for l in legs]) for o in t if o is not None))
        return (res + [o for o in fused if o not in res])[:n_nbs]
    if how=='rrf+top':  # each leg's top m guaranteed, then RRF order
        res = list(dict.fromkeys(o for l in legs for o in l[:m]))
        return (res + [o for o in fused if o not in res])[:n_nbs]
    raise ValueError(how)

def shortlist_passages(leg_ranks, doc_of, kept, n, depth=512):
    "Up to `n` passages of notebooks `kept` by RRF of the legs' passage rankings; at least the best one of each kept notebook"
    f = rrf([r[:depth] for r in leg_ranks])
    order,ks = sorted(f, key=lambda i: -f[i]),set(kept)
    first,rest,seen = [],[],set()
    for i in order:
        d = doc_of[i]
        if d not in ks: continue
        (rest if d in seen else first).append(i); seen.add(d)
    return (first + rest)[:max(n, len(first))]

# ---------------------------------------------------------------- per-query evidence
def evidence(C, lex, scope, q, qv, qs, mode='all', n_pass=128, n_nbs=30, how='rrf+top', dense_leg='static', depth=512):
    """Per-notebook evidence for query `q` within `scope` (passage indices). `mode`: 'all', MiniLM on every passage;
    'short', MiniLM only on the passage shortlist (`n_pass`) of the `n_nbs` notebooks stage 1 keeps (legs: BM25 and
    `dense_leg`); 'lib', today's nbsearch for a bi-encoder (stage 1 = RRF of BM25 and MiniLM notebook rankings, then
    MiniLM on every passage of the 30 notebooks kept). Lexical evidence always comes from stage 1's lexical leg (its
    `depth` best passages), which every mode computes anyway."""
    doc_of = {int(i):C['ps'][i]['doc'] for i in scope}
    cos_all = C['V'][scope] @ qv
    bm = lex(q)
    lex_rank = sorted(bm, key=lambda i: -bm[i])[:depth]
    bm = {i:bm[i] for i in lex_rank}
    if mode=='lib': dense_leg,how = 'minilm','rrf'
    if dense_leg=='static' and C['S'] is not None: sv = C['S'][scope] @ qs
    elif dense_leg=='minilm': sv = cos_all
    else: sv = None
    legs_p = [lex_rank] + ([[int(scope[j]) for j in np.argsort(-sv)[:depth]]] if sv is not None else [])
    legs_n = [nb_order(r, doc_of) for r in legs_p]
    docs = sorted(set(doc_of.values()))
    if mode=='all': kept,scored = docs,np.ones(len(scope), bool)
    elif mode=='lib':
        ks = set(shortlist_nbs(legs_n, n_nbs, how) if len(docs)>n_nbs else docs)
        scored = np.array([doc_of[int(i)] in ks for i in scope])
    else:
        kept = shortlist_nbs(legs_n, n_nbs, how)
        sp = set(shortlist_passages(legs_p, doc_of, kept, n_pass, depth))
        scored = np.array([int(i) in sp for i in scope])
    if not scored.any(): return {}
    ev,nbm,bmd,std = {},lex(q, 'nblex'),{},{}
    for i,s in bm.items(): bmd[doc_of[i]] = max(bmd.get(doc_of[i], 0.), s)
    if sv is not None:
        for j,i in enumerate(scope): std[doc_of[int(i)]] = max(std.get(doc_of[int(i)], -1.), float(sv[j]))
    s1rank = {d:r for r,d in enumerate(shortlist_nbs(legs_n, len(docs), 'rrf'))}
    qstem = lex.stems(q) - lex.stems(' '.join(stop_words))
    for j,(i,c) in enumerate(zip(scope, cos_all)):
        if scored[j]: ev.setdefault(doc_of[int(i)], dict(cos=[]))['cos'].append(float(c))
    for d,e in ev.items():
        cs = sorted(e.pop('cos'), reverse=True) + [np.nan, np.nan]
        e.update(c1=cs[0], c2=cs[1], c3=cs[2], bm=bmd.get(d, 0.), nbm=nbm.get(d, 0.), st=std.get(d, -1.),
                 t=float(C['TV'][d] @ qv), h=float(C['HV'][d] @ qv), s1=s1rank.get(d, len(docs)),
                 tl=len(qstem & lex.stems(_titleline(C['docs'][d])))/max(len(qstem), 1))
    return ev

# ---------------------------------------------------------------- rules
def feats(ev):
    "Evidence of a query's candidate notebooks as arrays, with per-query normalisations"
    ds = list(ev)
    a = {k:np.array([ev[d][k] for d in ds], dtype='float64') for k in ev[ds[0]]}
    for k in ('c2', 'c3'): a[k] = np.where(np.isnan(a[k]), a['c1'] if k=='c2' else np.where(np.isnan(a['c2']), a['c1'], a['c2']), a[k])
    a['bmn'] = a['bm']/max(a['bm'].max(), 1e-9)    # best-passage BM25 / the query's best
    a['nbmn'] = a['nbm']/max(a['nbm'].max(), 1e-9) # notebook BM25 / the query's best
    return ds, a

def rule_linear(a, w):
    "max cosine + weighted evidence; `w` maps feature name to weight"
    return a['c1'] + sum(v*a[k] for k,v in w.items())

def rule_rrf(a, keys, k=60):
    s = np.zeros(len(a['c1']))
    for f in keys:
        r = np.empty(len(s)); r[np.argsort(-a[f], kind='stable')] = np.arange(len(s)); s += 1/(k+r+1)
    return s + 1e-6*a['c1']

def run(evs, qrels, score_fn):
    "Mean nDCG@10, MRR, recall@10 of `score_fn(arrays)` over queries, and per-query nDCG"
    rows = []
    for q,rel in qrels.items():
        ds,a = evs[q]
        s = score_fn(a)
        ranked = [C_ids[ds[i]] for i in np.argsort(-s, kind='stable')]
        rows.append((ndcg(ranked, rel), mrr(ranked, rel), recall(ranked, rel)))
    return np.array(rows)

C_ids = None

def _w(a, w): return a['c1'] + sum(v*a[k] for k,v in w.items())

CHOSEN = dict(bmn=0.2)  # the rule of bench/fusion.md: max cosine + 0.2 * best-passage BM25 / the query's best
COMPONENTS = [('BM25 best passage', 'bmn'), ('notebook BM25', 'nbmn'), ('2nd-best passage', 'c2'),
              ('title cosine', 't'), ('title+headings cosine', 'h'), ('title word overlap', 'tl'),
              ('static leg best passage', 'st'), ('stage-1 RRF rank', 's1r')]
GRID = [0.025, 0.05, 0.1, 0.15, 0.2, 0.3]

def _loo(P):
    "Leave-one-query-out nDCG of picking the best row of `P` (settings x queries) on the other queries"
    return float(np.mean([P[np.argmax(np.delete(P, j, 1).mean(1)), j] for j in range(P.shape[1])]))

def _twofold(P, n=50, seed=0):
    rng,res = np.random.default_rng(seed),[]
    for _ in range(n):
        p = rng.permutation(P.shape[1]); A,B = p[:len(p)//2],p[len(p)//2:]
        res.append((P[np.argmax(P[:, A].mean(1)), B].sum() + P[np.argmax(P[:, B].mean(1)), A].sum())/len(p))
    return float(np.mean(res))

def _fmt(r): return f"{r[0]:.3f} {r[1]:.3f} {r[2]:.3f}"

def main():
    global C_ids
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--corpora', required=True); ap.add_argument('--qrels', required=True)
    ap.add_argument('--static', default=None, help="model2vec folder for stage 1's cheap dense leg (default: the packaged static-minilm)")
    ap.add_argument('--cache', default='/tmp/quality-ablation', help='prefix of the cached embedding files')
    ap.add_argument('--n-nbs', type=int, default=30, help='notebooks stage 1 keeps')
    ap.add_argument('--how', default='union', help="stage-1 notebook shortlist in the short modes: rrf, union or rrf+top")
    args = ap.parse_args()
    qrels = json.loads(Path(args.qrels).read_text())['queries']
    from nbsearch.static import static_path
    static = args.static or str(static_path())
    C = load_corpus(args.corpora, args.cache, static)
    C_ids = [d['id'] for d in C['docs']]
    unknown = sorted({d for r in qrels.values() for d in r} - set(C_ids))
    if unknown: print(f"WARNING: judged ids not in the corpus: {unknown}")
    qs = list(qrels)
    QV,QS = C['qmini'](qs),(C['qstatic'](qs) if static else [None]*len(qs))
    print(f"{len(qs)} queries, {len(C_ids)} notebooks, {len(C['ps'])} passages; static leg: {static or 'none (MiniLM leg instead)'}")
    scopes = {'whole': lambda d: True, 'fc+nbdev': lambda d: d.startswith(('fastcore/nbs/', 'nbdev/nbs/'))}
    modes = ['lib', 'all', 'short64', 'short128', 'short200']
    EV = {}
    for sn,inside in scopes.items():
        scope = np.array([i for i,p in enumerate(C['ps']) if inside(C_ids[p['doc']])])
        lex,doc_of = Lex(C, scope),{int(i):C['ps'][i]['doc'] for i in scope}
        print(f"\n== stage 1, {sn}: {len(set(doc_of.values()))} notebooks, {len(scope)} passages. Recall of the judged "
              f"notebooks (grade>0) in the first 10/20/{args.n_nbs} kept; share of queries whose dense leg's #1 notebook is kept")
        legs = {}
        for q,qv,qsv in zip(qs, QV, QS):
            bm = lex(q)
            lr = sorted(bm, key=lambda i: -bm[i])[:512]
            dense = {'minilm': C['V'][scope] @ qv} | ({'static': C['S'][scope] @ qsv} if static else {})
            legs[q] = {'bm25': nb_order(lr, doc_of)} | {k:nb_order([int(scope[j]) for j in np.argsort(-v)[:512]], doc_of) for k,v in dense.items()}
        dl = 'static' if static else 'minilm'
        rows = [('BM25 alone', 'rrf', ['bm25'], None), ('MiniLM alone', 'rrf', ['minilm'], None),
                ('RRF BM25+MiniLM (today)', 'rrf', ['bm25', 'minilm'], 'minilm')]
        if static: rows += [('static alone', 'rrf', ['static'], None)]
        rows += [(f'RRF BM25+{dl}', 'rrf', ['bm25', dl], dl), (f'union top-m BM25+{dl}', 'union', ['bm25', dl], dl),
                 (f'RRF+top-3 each BM25+{dl}', 'rrf+top', ['bm25', dl], dl)]
        for name,how,ls,d1 in rows:
            rs,top1 = [],[]
            for q,rel in qrels.items():
                L = [legs[q][k] for k in ls]
                judged = [C_ids.index(d) for d,g in rel.items() if g>0 and d in C_ids]
                rs.append([np.mean([d in set(shortlist_nbs(L, n, how)) for d in judged]) for n in (10, 20, args.n_nbs)])
                if d1: top1.append(legs[q][d1][0] in shortlist_nbs(L, args.n_nbs, how))
            r = np.mean(rs, axis=0)
            print(f"  {name:34} {r[0]:.3f} {r[1]:.3f} {r[2]:.3f}   {np.mean(top1) if top1 else float('nan'):.2f}")
        for mode in modes:
            kw = dict(mode=mode[:5] if mode.startswith('short') else mode, n_pass=int(mode[5:] or 0) if mode.startswith('short') else 0)
            EV[sn, mode] = {q: feats(evidence(C, lex, scope, q, qv, qsv, n_nbs=args.n_nbs, how=args.how, dense_leg=dl, **kw))
                            for q,qv,qsv in zip(qs, QV, QS)}
    for k in EV:
        for ds,a in EV[k].values(): a['s1r'] = 1/(1+a['s1'])
    R = lambda key, f: run(EV[key], qrels, f)
    cols = [(sn, m) for sn in scopes for m in ('lib', 'all', 'short128')]
    print("\n== final ranking. Columns: folder / MiniLM scores (lib = today's pipeline: RRF stage 1 with MiniLM as the dense leg,"
          " MiniLM on every passage of 30 notebooks; all = every passage; short128 = only the 128 passages stage 1 shortlists"
          f" from {args.n_nbs} notebooks, BM25+{dl} legs, shortlist '{args.how}'). Each cell: nDCG@10 MRR recall@10")
    print(f"{'rule':44}" + ''.join(f"{a+'/'+b:>19}" for a,b in cols))
    def line(name, f): print(f"{name:44}" + ''.join(f"{_fmt(R(c, f).mean(0)):>19}" for c in cols), flush=True)
    line('max passage cosine (today)', lambda a: a['c1'])
    line('CHOSEN: + 0.2 * BM25 best passage', lambda a: _w(a, CHOSEN))
    print("each component added alone to max cosine, at its best weight on whole/all (in-sample, so optimistic):")
    for name,k in COMPONENTS:
        P = [R(('whole', 'all'), lambda a, w=w: _w(a, {k:w}))[:, 0].mean() for w in GRID]
        w = GRID[int(np.argmax(P))]
        line(f"  + {w} * {name}", lambda a, k=k, w=w: _w(a, {k:w}))
    print("each component added to the chosen rule, at its best weight on whole/all (in-sample):")
    for name,k in COMPONENTS[1:]:
        P = [R(('whole', 'all'), lambda a, w=w: _w(a, dict(CHOSEN, **{k:w})))[:, 0].mean() for w in GRID]
        w = GRID[int(np.argmax(P))]
        line(f"  chosen + {w} * {name}", lambda a, k=k, w=w: _w(a, dict(CHOSEN, **{k:w})))
    print("rank fusions:")
    line('  RRF(cosine, BM25), k=60', lambda a: rule_rrf(a, ['c1', 'bm']))
    line('  RRF(cosine, BM25, title cosine), k=60', lambda a: rule_rrf(a, ['c1', 'bm', 't']))
    print(f"\n== the chosen rule by passage-shortlist size (MiniLM only on the shortlisted passages; notebooks: '{args.how}')")
    for sn in scopes:
        for m in modes:
            print(f"  {sn:9} {m:9} today {_fmt(R((sn, m), lambda a: a['c1']).mean(0))}   chosen {_fmt(R((sn, m), lambda a: _w(a, CHOSEN)).mean(0))}")
    print("\n== how much of the gain survives tuning on other queries (nDCG@10)")
    ws = [0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4]
    for key in [('whole', 'all'), ('whole', 'short128'), ('fc+nbdev', 'all'), ('fc+nbdev', 'short128')]:
        P = np.array([R(key, lambda a, w=w: _w(a, dict(bmn=w)))[:, 0] for w in ws])
        print(f"  {key[0]}/{key[1]}: BM25 weight curve " + ' '.join(f"{w}:{p:.3f}" for w,p in zip(ws, P.mean(1)))
              + f"  | LOO {_loo(P):.3f}, 2-fold {_twofold(P):.3f} (untuned {P[0].mean():.3f})")
    tg = [0, 0.05, 0.1, 0.2]
    grid2 = [dict(bmn=b, t=t) for b in ws for t in tg]
    P = np.array([R(('whole', 'all'), lambda a, w=w: _w(a, w))[:, 0] for w in grid2])
    print(f"  whole/all, 2 weights (BM25 x title cosine {tg}): best in-sample {P.mean(1).max():.3f}, LOO {_loo(P):.3f}, 2-fold {_twofold(P):.3f}")
    rng = np.random.default_rng(0)
    F = [k for _,k in COMPONENTS]
    W = [dict(zip(F, w)) for w in rng.uniform(0, .3, (300, len(F)))*(rng.random((300, len(F)))<.4)]
    P = np.array([R(('whole', 'all'), lambda a, w=w: _w(a, w))[:, 0] for w in W])
    print(f"  whole/all, all {len(F)} components (300 random weightings): best in-sample {P.mean(1).max():.3f}, LOO {_loo(P):.3f}, 2-fold {_twofold(P):.3f}")

if __name__=='__main__': main()
