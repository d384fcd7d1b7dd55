"""Which shortlisted passages must a cross-encoder read? Ranking quality of reading them all at once against reading them
in two rounds (`nbsearch.search.deepen`), with all-MiniLM-L6-v2 in the cross-encoder's seat.

    python bench/cascade.py ../shared/corpora ../shared/bench/dev_qrels.json

No cross-encoder weights exist on this machine, and a random one ranks at random, so the "cross-encoder" here is the one
real model: a stand-in whose score for a (query, passage) pair is all-MiniLM-L6-v2's cosine of the two. It goes through
the whole `rank_nbs` pipeline as a cross-encoder does (stage 1 with the static leg, the shortlist, the cross-encoder's
ranking rule: a notebook's best passage), so what changes between rows is only which passages it reads. Each row gives
nDCG@10 / MRR / recall@10 over the 33 dev queries on the whole folder and on fastcore+nbdev, and the passages read per
query. Embeddings are cached in `--cache` (first run: about 2 minutes on 2 cores).
"""
import json, hashlib, tempfile, numpy as np
from pathlib import Path
from fastcore.script import call_parse
import nbsearch.search as S
from nbsearch.models import load_model, offline_model, model_tok, tok_key
from nbsearch.evaluate import evaluate, read_qrels

class MiniLMAsCross:
    "A cross-encoder stand-in whose score is all-MiniLM-L6-v2's cosine of query and passage; it counts the passages it reads"
    kind,name,key,max_seq_length = 'cross','all-MiniLM-L6-v2 as a cross-encoder','minilm-as-cross-1',512
    def __init__(self, cache):
        self.m,self.cache,self.read = load_model(offline_model()),Path(cache),0
        self.tok_key,self.offsets = tok_key(self.m),model_tok(self.m)  # passages cut with MiniLM's tokenizer (the same BERT vocabulary as TinyBERT's)
        self.vecs = {k:np.array(v, 'float32') for k,v in json.loads(self.cache.read_text()).items()} if self.cache.exists() else {}
    def _vecs(self, texts):
        ks = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        new = {k:t for k,t in zip(ks, texts) if k not in self.vecs}
        if new: self.vecs.update(zip(new, self.m.embed(list(new.values()))))
        return np.stack([self.vecs[k] for k in ks])
    def score(self, q, texts):
        self.read += len(texts)
        return self._vecs(list(texts)) @ self._vecs([q])[0]
    def save(self): self.cache.write_text(json.dumps({k:v.tolist() for k,v in self.vecs.items()}))

@call_parse
def main(
    corpus:str, # Folder the judged doc ids are relative to (the whole folder is one of the two searched)
    qrels:str, # JSON file of graded judgments
    cache:str='/tmp/nbsearch-cascade-vecs.json', # Where the stand-in's embeddings are kept between runs
):
    "Print ranking quality and passages read for one-round reading of 128 and 64 passages, and two-round reading"
    qs,C = read_qrels(qrels),Path(corpus)
    folders = {'whole': [C], 'fc+nbdev': [C/'fastcore/nbs', C/'nbdev/nbs']}
    m = MiniLMAsCross(cache)
    rows = [('all 128 at once', None, 128), ('two rounds of 128 (deepen=10, the default)', 10, 128), ('two rounds, deepen=5', 5, 128),
            ('two rounds, deepen=15', 15, 128), ('all 64 at once', None, 64), ('all 96 at once', None, 96), ('two rounds of 192 (deepen=10)', 10, 192)]
    was = S.deepen
    with tempfile.TemporaryDirectory() as d:
        print(f"{'reading':44} {'whole: nDCG MRR R@10':>22} {'fc+nbdev: nDCG MRR R@10':>25} {'passages/query':>15}")
        try:
            for name,deep,n in rows:
                S.deepen,out,read = deep,[],[]
                for f,nbs in folders.items():
                    m.read = 0
                    mn = evaluate(qs, nbs, model=m, root=C, index=Path(d)/'index.db', rerank=n, progress=False).mean
                    out.append(f"{mn['ndcg@10']:.3f} {mn['mrr']:.3f} {mn['recall@10']:.3f}"); read.append(m.read/(len(qs)+1))  # +1: evaluate's warm-up search
                print(f"{name:44} {out[0]:>22} {out[1]:>25} {np.mean(read):>15.0f}", flush=True)
        finally: S.deepen = was; m.save()
