"""Wall time of the real `nbsearch` command, in fresh processes, against a baseline checkout timed in the same run.

    git worktree add /tmp/cli-baseline 8e5716e       # the code before issue 10
    python bench/cli_speed.py --baseline /tmp/cli-baseline                  # every figure, median of 5 runs
    python bench/cli_speed.py --baseline /tmp/cli-baseline --only help,bm25,model --runs 7
    python bench/cli_speed.py --new /tmp/merged --only help,bm25,model   # another checkout as "new"

Each version runs the installed `nbsearch` console script with `PYTHONPATH` pointing at its checkout (this one's for
"new"), so both go through the same entry point. Figures (issue 10's targets in brackets):
  help   `nbsearch --help`                                                        [<= 0.3 s]
  bm25   a search of tests/corpus with `--model bm25`, index already built        [<= 0.5 s]
  model  a search with the packaged all-MiniLM-L6-v2 (its folder), index built     [<= 1.5 s]
  first  the first search of tests/corpus with the default model, a fresh cache, no network and NO HF_HUB_OFFLINE [<= 15 s]
  next   the search right after `first`, same cache                               [<= 2 s]
  big    the first search of 1,000 notebooks (copies of ../shared/corpora, see bench/speed.py) with the packaged
         model, a fresh cache: the whole first index, then the first answer                  [<= 120 s]
         Not run for the baseline by default (v1 took 47 min there, MEASUREMENTS.md); `--big-baseline` runs it.
Nothing leaves the machine: every run has HF_ENDPOINT=http://127.0.0.1:9 (a closed port) and no HF_HUB_OFFLINE, as a
laptop on a train would be. Each run gets its own cache folder (XDG_CACHE_HOME), so the index and the Hugging Face
cache start as a new user's would; warm figures build it once first. A run that fails or prints no hit is reported.
"""
import os, sys, time, shutil, tempfile, subprocess, statistics as stats
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for `speed.replicate`
from pathlib import Path
from fastcore.script import call_parse

root = Path(__file__).resolve().parent.parent
corpus = root/'tests'/'corpus'
q = 'free a busy port'
targets = dict(help=0.3, bm25=0.5, model=1.5, first=15, next=2, big=120)
shared = root.parent/'shared'/'corpora'

def _env(pypath, cache):
    env = {k:v for k,v in os.environ.items() if k not in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE', 'HF_HOME', 'PYTHONPATH')}
    return {**env, 'PYTHONPATH': str(pypath), 'XDG_CACHE_HOME': str(cache), 'HF_ENDPOINT': 'http://127.0.0.1:9',
            'TOKENIZERS_PARALLELISM': 'false'}

def timed(args, env, timeout):
    "Wall seconds of one run of `nbsearch args`, or `None` if it failed or found nothing"
    exe = Path(sys.executable).parent/'nbsearch'
    t = time.perf_counter()
    try: r = subprocess.run([exe, *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired: return None
    dt = time.perf_counter()-t
    ok = r.returncode==0 and (args[0]=='--help' or 'ports.ipynb' in r.stdout or (args[0]!=q and '.ipynb' in r.stdout))
    if not ok: print(f'  run failed ({r.returncode}): {r.stderr.strip()[-300:]}', file=sys.stderr)
    return dt if ok else None

def figure(name, pypath, tmp, runs, model, timeout):
    "Wall times of `runs` runs of figure `name` for the checkout at `pypath`"
    cache = Path(tempfile.mkdtemp(dir=tmp))
    env = _env(pypath, cache)
    if name=='help': return [timed(['--help'], env, timeout) for _ in range(runs)]
    if name in ('bm25', 'model'):
        args = [q, corpus, '-k', '5', '--model', 'bm25' if name=='bm25' else model]
        timed(args, env, timeout)  # build the index (and any model cache) once
        return [timed(args, env, timeout) for _ in range(runs)]
    if name=='big':
        from speed import replicate
        big = Path(tmp)/'nb1000'
        if not big.exists(): replicate(shared, 1000, big)
        return [timed(['parallel processing of a list', big, '-k', '5', '--model', model], _env(pypath, Path(tempfile.mkdtemp(dir=tmp))), timeout)
                for _ in range(runs)]
    res = []
    for _ in range(runs):  # `first` and `next` come in pairs, each pair in a fresh cache
        c = Path(tempfile.mkdtemp(dir=tmp)); e = _env(pypath, c)
        res.append((timed([q, corpus, '-k', '5'], e, timeout), timed([q, corpus, '-k', '5'], e, timeout)))
        shutil.rmtree(c, ignore_errors=True)
    return res

def med(ts):
    if not ts: return 'not run', 0
    ok = [t for t in ts if t is not None]
    return (stats.median(ok) if ok else None), len(ts)-len(ok)

def fmt(t): return f'{t:>9}' if isinstance(t, str) else '   failed' if t is None else f'{t:8.2f}s'

@call_parse
def main(
    baseline:str='/tmp/cli-baseline', # A checkout of the code to compare against (e.g. `git worktree add /tmp/cli-baseline 8e5716e`)
    new:str=None, # The checkout to measure (default: this one), e.g. a scratch merge of several branches
    only:str='help,bm25,model,first', # Figures to time, comma-separated (`first` also gives `next`)
    runs:int=5, # Runs per figure and version; each figure is their median
    model:str=None, # The packaged model for `model` (default: its folder, `nbsearch.models.offline_model()`)
    big_runs:int=1, # Runs of `big` (each indexes 1,000 notebooks from scratch)
    big_baseline:bool=False, # Time `big` for the baseline too (47 minutes for v1 on 2 cores)
):
    "Time the `nbsearch` command of this checkout and of `baseline`, in fresh processes, and print a table with ratios"
    from nbsearch.models import offline_model
    model = model or offline_model()
    vers = dict(baseline=Path(baseline).resolve(), new=Path(new).resolve() if new else root)
    rows = []
    with tempfile.TemporaryDirectory(prefix='cli-speed-') as tmp:
        for name in only.split(','):
            res = {}
            for v,p in vers.items():
                t0 = time.perf_counter()
                if name=='big' and v=='baseline' and not big_baseline: res[v] = []; continue  # reported as 'not run', not as a failed run
                res[v] = figure(name, p, tmp, big_runs if name=='big' else runs, model, timeout=3600 if name=='big' else 600)
                print(f'{name:6} {v:8} done in {time.perf_counter()-t0:.0f} s', file=sys.stderr)
            if name=='first':
                rows.append(('first', *[med([a for a,_ in res[v]]) for v in vers]))
                rows.append(('next', *[med([b for _,b in res[v]]) for v in vers]))
            else: rows.append((name, *[med(res[v]) for v in vers]))
    print(f'\n`nbsearch` wall time, median of {runs} fresh processes each, {os.cpu_count()} CPUs; no network, no HF_HUB_OFFLINE')
    print(f"{'figure':7} {'baseline':>9} {'new':>9} {'speed-up':>9} {'target':>7}  failed runs (baseline/new)")
    for name,(b,bf),(n,nf) in rows:
        ratio = f'{b/n:8.1f}x' if isinstance(b, float) and isinstance(n, float) else '        -'
        print(f'{name:7} {fmt(b)} {fmt(n)} {ratio} {targets[name]:6}s  {bf}/{nf}')
