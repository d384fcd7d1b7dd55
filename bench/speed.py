"""Query latency of nbsearch against the original method, and the cost of indexing, on corpora of growing size.

    python bench/speed.py ../shared/corpora --sizes "80 1000"      # warm latency, nbsearch vs the original method
    python bench/speed.py ../shared/corpora --sizes 10000 --no-original  # 10,000 notebooks: build, queries, memory
    git worktree add /tmp/speed-baseline 8e5716e      # an older nbsearch, to compare against in the same run:
    python bench/speed.py ../shared/corpora --sizes 1000 --no-original --baseline /tmp/speed-baseline

`--baseline DIR` (several, separated by spaces) runs this same script first with `PYTHONPATH=DIR`, in a subprocess, for
each checkout, then on this code, and ends with a table of each one's numbers and their ratio to the first baseline's.

Large corpora are made by copying the notebooks of `corpus` into distinct folders. The cross-encoder is a random model
of the exact shape of `cross-encoder/ms-marco-TinyBERT-L2-v2` (weights do not change its speed). The original method is
the blog post's: `CrossEncoder.rank` over every notebook's raw `.ipynb` JSON, per query. Both run in this process, on the
same queries, one after the other; the ratio of their median latencies is the speed-up.
"""
import os, sys, time, json, shutil, tempfile, resource, subprocess, statistics as stats
from pathlib import Path
from fastcore.script import call_parse
from nbsearch.core import *
from nbsearch.core import get_index
from nbsearch.models import tiny_cross_encoder, load_model, offline_model

queries = ['run a function over many items in parallel processes', 'strip metadata from notebooks before committing',
           'create a blog with notebooks', 'standard locations for config and cache directories', 'colored text for terminal output',
           'resolve git merge conflicts in notebooks', 'download a url and parse the json', 'hide a cell from the rendered documentation']

def replicate(src, n, dest):
    "Copy notebooks of `src` into folders `dest/copy_i` until there are `n`"
    nbs = get_nb_paths(src)
    for i in range(n):
        p = Path(src)/nbs[i % len(nbs)].relative_to(src)
        d = Path(dest)/f'copy_{i//len(nbs)}'/p.relative_to(src)
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, d)
    return dest

def timeit(f, reps):
    ts = []
    for q in reps:
        t = time.perf_counter(); f(q); ts.append(time.perf_counter()-t)
    return stats.median(ts)

def peak_mb(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024

def _run(corpus, sizes, original, orig_queries, model):
    "Time every size of `sizes`: `{n: {'build_s':..., 'warm_ms':..., ...}}`"
    import nbsearch; print(f'nbsearch from {Path(nbsearch.__file__).parent}', flush=True)
    res = {}
    with tempfile.TemporaryDirectory() as d:
        m = load_model(model or tiny_cross_encoder(Path(d)/'tinybert-l2'))
        print(f'model: {type(m).__module__}.{type(m).__name__}', flush=True)  # ONNX (nbsearch.models.OnnxModel) or sentence-transformers
        for n in map(int, sizes.split()):
            root = replicate(corpus, n, Path(d)/f'corpus{n}')
            ix = Path(d)/f'index{n}.db'
            print(f'\n== {n} notebooks')
            t = time.perf_counter(); rank_nbs(queries[0], root, model=m, k=10, index=ix); build = time.perf_counter()-t
            print(f'cold: index built and first query in {build:.1f} s')
            warm = timeit(lambda q: rank_nbs(q, root, model=m, k=10, index=ix), queries)
            print(f'nbsearch warm query: {warm*1000:.0f} ms (median of {len(queries)})')
            res[str(n)] = dict(build_s=build, warm_ms=warm*1000)
            try: import nbsearch.search as S  # an older checkout may not have it
            except ImportError: S = None
            if getattr(S, 'deepen', None) is not None and (getattr(m, 'kind', None)=='cross' or 'Cross' in type(m).__name__):  # the same searches with the cross-encoder reading every shortlisted passage at once
                was,S.deepen = S.deepen,None
                try: flat = timeit(lambda q: rank_nbs(q, root, model=m, k=10, index=ix), queries)
                finally: S.deepen = was
                print(f'nbsearch warm query, the model reading all its passages at once (deepen=None): {flat*1000:.0f} ms (median of {len(queries)})')
                res[str(n)]['warm_one_round_ms'] = flat*1000
            warm64 = timeit(lambda q: rank_nbs(q, root, model=m, k=10, index=ix, rerank=64), queries)
            print(f'nbsearch warm query, the model scoring 64 passages: {warm64*1000:.0f} ms (median of {len(queries)})')
            res[str(n)]['warm64_ms'] = warm64*1000
            if type(m).__name__=='OnnxModel' and (os.cpu_count() or 1)>1:  # its default: one batch at a time (older checkouts), or one per core
                from nbsearch.models import OnnxModel
                m1,t1,td = OnnxModel(m.path, name=m.name, threads=1),[],[]
                for q in queries*2:  # in turns with the default, so that a load that comes and goes slows both alike
                    for f,ts in ((m1, t1), (m, td)): t = time.perf_counter(); rank_nbs(q, root, model=f, k=10, index=ix); ts.append(time.perf_counter()-t)
                print(f'nbsearch warm query, ONNX one batch at a time (threads=1): {stats.median(t1)*1000:.0f} ms, and {stats.median(td)*1000:.0f} ms '
                      f'with the default ({getattr(m, "threads", 1)}) in turns with it (medians of {len(t1)})')
                res[str(n)]['warm_1thread_ms'],res[str(n)]['warm_default_in_turns_ms'] = stats.median(t1)*1000,stats.median(td)*1000
            if n<=100:  # is stage 1 worth it on a small corpus? time the model scoring every passage instead
                was = getattr(S, 'deepen', None)
                if was is not None: S.deepen = None  # a cross-encoder reads every passage in one round
                try: full = timeit(lambda q: rank_nbs(q, root, model=m, k=10, index=ix, rerank=10**9), queries)
                finally:
                    if was is not None: S.deepen = was
                print(f'without stage 1 (the model scores every passage): {full*1000:.0f} ms')
            p = sorted(Path(root).rglob('*.ipynb'))[0]
            os.utime(p); p.write_text(p.read_text())  # touch one notebook: new mtime, same content
            t = time.perf_counter(); rank_nbs(queries[1], root, model=m, k=10, index=ix); touched = time.perf_counter()-t
            with p.open('a') as f: f.write('\n')  # change one notebook's content
            t = time.perf_counter(); rank_nbs(queries[1], root, model=m, k=10, index=ix); edited = time.perf_counter()-t
            print(f're-query after touching one notebook: {touched*1000:.0f} ms; after editing one: {edited*1000:.0f} ms', flush=True)
            res[str(n)].update(touched_ms=touched*1000, edited_ms=edited*1000)
            print(f'peak memory so far: {peak_mb():.0f} MB')
            if original:
                paths = get_nb_paths(root)
                raw = [Path(o).read_text(encoding='utf-8') for o in paths]
                orig = timeit(lambda q: m.rank(q, raw, show_progress_bar=False), queries[:orig_queries])
                print(f'original method: {orig*1000:.0f} ms per query (median of {orig_queries})')
                print(f'speed-up: {orig/warm:.0f}x')
    return res

@call_parse
def main(
    corpus:str, # Folder of notebooks to replicate
    sizes:str='80 1000', # Corpus sizes to measure, in notebooks
    original:bool=True, # Also time the original method (slow: about 20 ms per notebook per query)
    orig_queries:int=3, # Queries to time the original method on
    model:str=None, # Model to rank with (default: a random cross-encoder of TinyBERT-L2's shape)
    baseline:str=None, # Checkouts of other nbsearch versions (space-separated) to time the same way first, in subprocesses
    json_out:str=None, # Write this run's numbers to this JSON file
):
    "Print cold build time, warm query latency and peak memory for nbsearch, and the original method's latency"
    if baseline:
        runs = {}
        for b in baseline.split():
            print(f'\n######## baseline {b}', flush=True)
            with tempfile.NamedTemporaryFile(suffix='.json') as f:
                args = [sys.executable, __file__, corpus, '--sizes', sizes, '--json-out', f.name] + ([] if original else ['--no-original'])
                args += ['--orig-queries', str(orig_queries)] + (['--model', model] if model else [])
                subprocess.run(args, check=True, env={**os.environ, 'PYTHONPATH': os.pathsep.join(filter(None, [str(Path(b).absolute()), os.environ.get('PYTHONPATH')]))})
                runs[b] = json.load(open(f.name))
        print(f'\n######## this checkout ({Path(__file__).parent.parent.absolute()})', flush=True)
        runs['this'] = _run(corpus, sizes, original, orig_queries, model)
        base = runs[baseline.split()[0]]
        print('\n== summary (ratio: this number / the first baseline\'s)')
        for n in base:
            for k in base[n]:
                print(f'{n:>6} notebooks  {k:<10}' + ''.join(f'  {Path(r).name}: {v[n][k]:9.3f} ({v[n][k]/base[n][k]:.2f}x)' for r,v in runs.items() if n in v and k in v[n]))
        return
    res = _run(corpus, sizes, original, orig_queries, model)
    if json_out: Path(json_out).write_text(json.dumps(res))

