"""Does asking for more hits change the scores of the notebooks a smaller `k` returns?

    python bench/k_stable.py ../shared/corpora --tiny /tmp/tiny-ce     # a folder made by `nbsearch.models.tiny_cross_encoder`

For each query and model, it searches with `k=small` and `k=large` (fresh in-memory indexes) and counts the notebooks both
return with the same score and with a different one. Models: BM25 alone, the packaged all-MiniLM-L6-v2, and a cross-encoder
(a random one of TinyBERT-L2's shape, `--tiny`, when given).
"""
import warnings
from fastcore.script import call_parse
from nbsearch.core import rank_nbs
from nbsearch.models import offline_model, load_model, tiny_cross_encoder

queries = ['helpers to check that two values are equal in a test', 'run a function over many items in parallel processes',
           'colored text for terminal output', 'create a blog with notebooks', 'hide a cell from the rendered documentation',
           'download a url and parse the json']

@call_parse
def main(
    folder:str, # Notebooks to search
    small:int=30, # The smaller `k`
    large:int=45, # The larger `k`
    tiny:str=None, # Folder of a cross-encoder to try too (made there by `tiny_cross_encoder` if missing)
):
    "Print, per model, how many notebooks returned by both searches kept their score"
    warnings.simplefilter('ignore')
    ms = [('bm25', None), ('all-MiniLM-L6-v2', load_model(offline_model()))]
    if tiny: ms.append(('tiny cross-encoder', load_model(tiny_cross_encoder(tiny))))
    for name,m in ms:
        same = diff = 0
        for q in queries:
            a,b = ({str(h.path): h.score for h in rank_nbs(q, folder, m, k=k, index=False, progress=False)} for k in (small, large))
            for p in a.keys() & b.keys(): same += a[p]==b[p]; diff += a[p]!=b[p]
        print(f'{name}: of the notebooks both return, {same} have the same score, {diff} a different one')
