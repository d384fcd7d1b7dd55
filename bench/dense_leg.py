"""Candidates for stage 1's dense leg, measured side by side: size, speed, and quality alone and fused with BM25.

    python bench/dense_leg.py /work/shared/corpora /work/shared/bench/dev_qrels.json

For each candidate: passages embedded a second (every passage of the corpus, cut for all-MiniLM-L6-v2: 128 tokens,
overlap 32), dev nDCG@10 of its notebook ranking alone (each notebook scored by its best passage), and, as a stage-1
leg, the share of judged notebooks in the 30-notebook shortlist when its passage ranking is fused with BM25's by
`nbsearch.search.shortlist` (the notebooks it keeps) (BM25 alone in the first row), with the nDCG@10 of that fused ranking. Both on the whole
corpus and on `--subdirs` alone. Then the estimated first-index seconds of the leg at 1,000 notebooks: the passages of a
1,000-notebook folder (the corpus's notebooks copied under distinct names into `--big`) over the measured rate, and,
for the static models, the embedding of those passages timed for real.

Candidates: the packaged static model (`nbsearch.static.static_model`), the other distillations `bench/distill_static.py`
makes (in `--variants`, a folder of model folders), WordLlama's l2_supercat 256-d model and tokenlearn-static-model
(64-d int8, 10k tokens), both from PyPI (`--extra`: a folder they are installed in with `pip install --target`), and
all-MiniLM-L6-v2 itself through sentence-transformers as the reference (its vectors cached in `--cache`).
"""
import json, time, hashlib, shutil, sys, os
from pathlib import Path
import numpy as np
from fastcore.script import call_parse
from nbsearch.read import get_nb_paths
from nbsearch.index import NbIndex, PassageSetting
from nbsearch.evaluate import _doc_id, ndcg, read_qrels, recall
from nbsearch.search import Candidate, shortlist

class _Columns:
    "Passages `ps` (`StoredPassage`s) as columns: `ids`, `paths`, `texts`"
    def __init__(self, ps): self.ids,self.paths,self.texts = [p.id for p in ps],[p.path for p in ps],[p.text for p in ps]

def _kept(ix, st, rp, q, dense, owner, n_nbs=30, depth=512):
    "The notebooks stage 2 (`nbsearch.search.shortlist`) keeps for `q`: BM25 from `ix`, and the dense leg's ranking `dense` (all passage ids, best first; `None`: BM25 alone)"
    rank = {i:r for r,i in enumerate(dense)} if dense is not None else {}
    cands = {h.id: Candidate(h.id, h.path, '', [], [], '', [], lex_rank=r, lex_score=h.score, dense_rank=rank.get(h.id))
             for r,h in enumerate(ix.lexical(q, st, rp, n=depth))}  # a lexical candidate gets its dense rank too, as in `candidates`
    for i in (dense or [])[:depth]:
        if i not in cands: cands[i] = Candidate(i, owner[i], '', [], [], '', [], dense_rank=rank[i])
    return list(dict.fromkeys(c.path for c in shortlist(list(cands.values()), n_nbs, None)))
from nbsearch.static import static_model, load_static, static_path


def _texts_key(texts): return hashlib.sha1('\x00'.join(texts).encode()).hexdigest()[:12]

def vectors(name, f, texts, cache):
    "`f(texts)`, cached in `cache`, and the passages a second it ran at, and a CPU-second (taken when it was computed)"
    p = Path(f'{cache}-{name}-{_texts_key(texts)}.npz')
    if p.exists(): o = np.load(p); return o['v'], float(o['rate']), float(o['cpu'])
    t,c = time.perf_counter(),time.process_time()
    v = np.asarray(f(texts), dtype='float32')
    rate,cpu = len(texts)/(time.perf_counter()-t),len(texts)/(time.process_time()-c)
    np.savez(p, v=v, rate=rate, cpu=cpu)
    return v, rate, cpu

def minilm():
    "The packaged all-MiniLM-L6-v2, through sentence-transformers"
    from nbsearch.models import load_model, offline_model, embed
    m = load_model(offline_model())
    return lambda ts: embed(m, ts)

def candidates(variants, extra):
    "Name, dims, MB, embed function and whether it is a static model of ours, for each candidate"
    res = []
    for p in [static_path()] + sorted(Path(variants).glob('*') if variants else []):
        m = load_static(p)
        res.append((f'static-minilm {p.name}' if p!=static_path() else 'static-minilm (packaged)', m.vectors.shape[1],
                    (p/'model.safetensors').stat().st_size/1e6, m.embed, True))
    if extra and Path(extra).exists():
        sys.path.insert(0, str(extra))
        try:
            from wordllama import WordLlama
            wl = WordLlama.load(disable_download=True)
            w = next(Path(extra).glob('wordllama/weights/*.safetensors'))
            res.append(('wordllama l2_supercat', wl.embedding.shape[1], w.stat().st_size/1e6, lambda ts: wl.embed(ts, norm=True), False))
        except Exception as e: print(f'wordllama skipped: {e}')
        try:
            from static_model import get_embeddings
            w = next(Path(extra).glob('static_model/model/model.safetensors'))
            res.append(('tokenlearn-static-model', 64, w.stat().st_size/1e6, lambda ts: np.array(get_embeddings(list(ts))), False))
        except Exception as e: print(f'tokenlearn-static-model skipped: {e}')
    return res

def big_folder(corpus, big, n=1000):
    "A folder of `n` notebooks: those of `corpus` copied over and over under distinct names"
    big = Path(big)
    if len(list(big.glob('*.ipynb')))!=n:
        big.mkdir(parents=True, exist_ok=True)
        src = get_nb_paths(corpus)
        for i in range(n): shutil.copyfile(src[i%len(src)], big/f'{i:04d}_{src[i%len(src)].stem}.ipynb')
    return get_nb_paths(big)

class Scope:
    "An in-memory index of notebooks `paths`, their passages, and the judged queries"
    def __init__(self, paths, st, root, qrels):
        self.ix,self.st,self.root,self.qrels = NbIndex(),st,root,qrels
        self.rp = self.ix.sync(paths, st)
        self.ps = _Columns(self.ix.passages(st, self.rp))
        self.owner = dict(zip(self.ps.ids, self.ps.paths))
    def scores(self, vecs, qv, pos):
        "Per query: nDCG@10 alone, then recall@30 and nDCG@10 of the shortlist fused with BM25 (BM25 alone when `vecs` is None)"
        res = []
        for (q,rel),v in zip(self.qrels.items(), qv if qv is not None else [None]*len(self.qrels)):
            alone,dense = 0.,None
            if vecs is not None:
                s = vecs[pos] @ v
                best = {}
                for p,x in zip(self.ps.paths, s): best[p] = max(best.get(p, -9), x)
                alone = ndcg([_doc_id(p, self.root) for p in sorted(best, key=lambda p: -best[p])], rel)
                dense = [self.ps.ids[i] for i in np.argsort(-s)]
            kept = [_doc_id(p, self.root) for p in _kept(self.ix, self.st, self.rp, q, dense, self.owner, 30)]
            res.append((alone, recall(kept, rel, 30), ndcg(kept, rel)))
        return np.mean(res, axis=0)

@call_parse
def main(
    corpus:str, # Folder of notebooks the judged ids are relative to
    qrels:str, # JSON file of graded judgments
    subdirs:str='fastcore nbdev', # Folders of `corpus` for the second, narrower scope
    variants:str='/tmp/static-models', # Folder of other static models to compare (from bench/distill_static.py)
    extra:str='/tmp/static-extra', # Where wordllama and tokenlearn-static-model are installed (pip install --target)
    cache:str='/tmp/static-vecs', # Prefix of the files that cache each candidate's passage vectors
    big:str='/tmp/static-nb1000', # Folder for the 1,000-notebook copy
    minilm_sample:int=256, # Passages all-MiniLM-L6-v2 embeds for its rate (its quality is not measured here: an hour on 2 cores); 0 to skip
):
    "Print the comparison table of dense-leg candidates"
    sm = static_model()
    st = PassageSetting(sm.offsets, sm.tok_key, 128, 32)  # = all-MiniLM-L6-v2's setting: same tokenizer, same window
    qs,root = read_qrels(qrels),Path(corpus)
    scopes = {'whole': Scope(get_nb_paths(corpus), st, root, qs),
              'sub': Scope(get_nb_paths([root/s for s in subdirs.split()]), st, root, qs)}
    texts = scopes['whole'].ps.texts
    at = {(p,t):i for i,(p,t) in enumerate(zip(scopes['whole'].ps.paths, texts))}  # each index numbers its passages its own way
    pos = {k: [at[p,t] for p,t in zip(s.ps.paths, s.ps.texts)] for k,s in scopes.items()}
    t = time.perf_counter(); bigps = [p for ps in st.cut([st.read(p) for p in big_folder(corpus, big)]) for p in ps]
    print(f"{len(qs)} queries; {len(scopes['whole'].rp)} notebooks, {len(texts)} passages (scope '{subdirs}': "
          f"{len(scopes['sub'].rp)} notebooks); 1,000 notebooks: {len(bigps)} passages, read and cut in {time.perf_counter()-t:.0f} s\n")
    cands = candidates(variants, extra)
    head = f"{'candidate':28} {'dims':>4} {'MB':>5} {'pass/s':>6} {'/cpu-s':>6} | {'nDCG alone':>10} {'R@30 fused':>10} {'nDCG fused':>10} | {'sub: alone':>10} {'R@30':>6} {'fused':>6} | {'1k nbs s':>8} {'timed':>6}"
    print('pass/s: passages embedded a second (wall; /cpu-s: a CPU-second); nDCG: nDCG@10; R@30: share of judged notebooks in the '
          '30-notebook shortlist; fused: with BM25 by `nbsearch.search.shortlist`; sub: the same on --subdirs; 1k nbs s: seconds to embed the '
          'passages of 1,000 notebooks at the measured rate (wall), timed: the same, timed for real')
    print(head); print('-'*len(head))
    b,bs = scopes['whole'].scores(None, None, None),scopes['sub'].scores(None, None, None)
    print(f"{'BM25 alone':28} {'':>4} {'':>5} {'':>6} {'':>6} | {'':>10} {b[1]:10.3f} {b[2]:10.3f} | {'':>10} {bs[1]:6.3f} {bs[2]:6.3f} |")
    first = True  # the 1,000-notebook embedding is timed for the packaged model only: the rest are estimates
    for name,dims,mb,f,ours in cands:
        v,rate,cpu = vectors(name.split()[0]+'-'+hashlib.sha1(name.encode()).hexdigest()[:6], f, texts, cache)
        qv = np.asarray(f(list(qs)), dtype='float32')
        w,s = scopes['whole'].scores(v, qv, pos['whole']),scopes['sub'].scores(v, qv, pos['sub'])
        timed = ''
        if ours and first:
            bt = [p.text for p in bigps]
            t = time.perf_counter(); f(bt); timed = f'{time.perf_counter()-t:6.1f}'
            first = False
        print(f"{name:28} {dims:4d} {mb:5.1f} {rate:6.0f} {cpu:6.0f} | {w[0]:10.3f} {w[1]:10.3f} {w[2]:10.3f} | {s[0]:10.3f} {s[1]:6.3f} {s[2]:6.3f} | {len(bigps)/rate:8.0f} {timed:>6}")
    from model2vec import StaticModel  # the packaged model through model2vec itself: same vectors, its speed
    m2v = StaticModel.from_pretrained(static_path())
    t,c = time.perf_counter(),time.process_time(); m2v.encode(texts)
    print(f"{'  same, through model2vec':28} {'':>4} {'':>5} {len(texts)/(time.perf_counter()-t):6.0f} {len(texts)/(time.process_time()-c):6.0f} |")
    if minilm_sample:
        f,ts = minilm(),texts[:minilm_sample]
        f(ts[:8])  # warm up
        t,c = time.perf_counter(),time.process_time(); f(ts); rate,cpu = len(ts)/(time.perf_counter()-t),len(ts)/(time.process_time()-c)
        from nbsearch.models import offline_model
        mb = (Path(offline_model())/'model.safetensors').stat().st_size/1e6
        print(f"{'all-MiniLM-L6-v2 (torch)':28} {384:4d} {mb:5.1f} {rate:6.0f} {cpu:6.0f} | {'(rate on '+str(len(ts))+' passages; quality not run)':>43} | {'':>24} | {len(bigps)/rate:8.0f}")
