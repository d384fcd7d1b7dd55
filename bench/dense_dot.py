"""How the dense leg's product (`nbsearch.search._dot`) should be computed, measured by the warm cross-encoder query it is part of.

    python bench/speed.py ...  # or any folder of notebooks, e.g. 1,000 made by `speed.replicate`:
    python bench/dense_dot.py /tmp/nb1000 --index /tmp/nb1000.db --rounds 3

Three ways, in turns on the same queries in one process (medians, ms per warm query with the tiny cross-encoder of
TinyBERT-L2's shape): `np.einsum` on one thread (nbsearch's), numpy's `@` (BLAS on all its threads, which then spin while
the cross-encoder runs), and `@` with BLAS held to one thread by threadpoolctl (if installed) for the product.
"""
import time, sys, tempfile, statistics as stats, warnings, numpy as np
from pathlib import Path
from fastcore.script import call_parse
sys.path.insert(0, str(Path(__file__).parent)); from speed import queries
from nbsearch.core import rank_nbs
from nbsearch.models import load_model, tiny_cross_encoder
import nbsearch.search as S

@call_parse
def main(
    folder:str, # A folder of notebooks
    index:str=None, # The index file (built on the first query if missing; default: a temporary one)
    rounds:int=3, # Times each query is run with each way
):
    "Print the median warm query time with each way of computing the dense leg's product"
    warnings.simplefilter('ignore')
    ways = {'np.einsum, one thread (nbsearch)': S._dot, 'numpy @ (BLAS threads)': lambda a,b: a@b}
    try:
        from threadpoolctl import threadpool_limits
        def limited(a, b):
            with threadpool_limits(1, user_api='blas'): return a@b
        ways['numpy @, BLAS held to one thread'] = limited
    except ImportError: pass
    with tempfile.TemporaryDirectory() as d:
        m,ix = load_model(str(tiny_cross_encoder(Path(d)/'tiny'))),index or Path(d)/'index.db'
        rank_nbs(queries[0], folder, model=m, index=ix, k=10, progress=False)
        ts = {k:[] for k in ways}
        try:
            for _ in range(rounds):
                for q in queries:
                    for k,f in ways.items():
                        S._dot = f
                        t = time.perf_counter(); rank_nbs(q, folder, model=m, index=ix, k=10, progress=False); ts[k].append(time.perf_counter()-t)
        finally: S._dot = ways['np.einsum, one thread (nbsearch)']
    for k,v in ts.items(): print(f'{k:36} {stats.median(v)*1000:7.1f} ms (median of {len(v)})')
