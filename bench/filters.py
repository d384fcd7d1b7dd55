"""Cost of the filters on cells (`cell_type`, `tags`, `errors`): warm BM25 queries over a folder, with each filter and
without, in the same run and on the same index.

    python bench/filters.py ../shared/corpora --runs 5

Prints, per filter, the median warm query time against the unfiltered one (as a ratio), the share of passages the
filter lets through, and how many of `k` hits came back (all `k` when at least `k` notebooks have a passage that passes).
"""
import time, tempfile, statistics as stats
from pathlib import Path
from fastcore.script import call_parse
from nbsearch.core import rank_nbs, get_nb_paths
from nbsearch.index import get_index
from nbsearch.search import setting_for

qs = ['read a notebook and cut it into passages', 'parse the command line arguments', 'raise an error for a missing file',
      'test that two values are equal', 'cache the result of a function']

@call_parse
def main(
    folder:str, # A folder of notebooks
    runs:int=5, # Timed passes over the queries, per filter (the median is reported)
    k:int=10, # Hits asked for
    tag:str=None, # A tag to filter by (default: the commonest one in the folder's passages)
):
    "Median warm BM25 query time with each filter on cells, against none, on the same index"
    with tempfile.TemporaryDirectory() as d:
        ix = get_index(Path(d)/'index.db')
        for outputs in (False, True): rank_nbs('warm up', folder, model=None, index=ix, outputs=outputs)  # build both settings
        st = setting_for(None)
        paths = ix.sync(get_nb_paths(folder), st)
        n = len(ix.matching(st, paths))
        tags = ix.db.execute("select j.value, count(*) c from pcells c2, json_each(c2.tags) j group by j.value order by c desc limit 1").fetchone()
        tag = tag or (tags[0] if tags else 'none')
        cases = {'none': {}, 'cell_type=code': dict(cell_type='code'), 'cell_type=markdown': dict(cell_type='markdown'),
                 f'tags={tag!r}': dict(tags=tag), 'errors=True': dict(errors=True), 'outputs=True (baseline of errors)': dict(outputs=True)}
        base = None
        print(f'{len(paths)} notebooks, {n} passages; k={k}, {runs} runs of {len(qs)} queries, BM25, warm index')
        for name,kw in cases.items():
            times,got = [],[]
            for _ in range(runs):
                for q in qs:
                    t = time.perf_counter(); hs = rank_nbs(q, folder, model=None, index=ix, k=k, **kw); times.append(time.perf_counter()-t)
                    got.append(len(hs))
            f = {o:v for o,v in kw.items() if o!='outputs'}
            share = len(ix.matching(setting_for(None, kw.get('outputs', False) or kw.get('errors', False)), paths, f.get('cell_type'), [f['tags']] if 'tags' in f else None, f.get('errors', False)))
            med = stats.median(times); base = base or med
            print(f'{name:36} {med*1000:7.1f} ms  x{med/base:4.2f}   passages passing {share:6d}   hits {min(got)}-{max(got)} of {k}')
