"""A new user's first search, and the one after it: when the results are printed, and when the process exits.

    git worktree add /tmp/cli-baseline 8e5716e       # or any other checkout to compare against
    python bench/first_answer.py --baseline /tmp/cli-baseline --runs 3

`bench/cli_speed.py --only first` times the whole process; since the first ONNX export runs after the results are
printed, this script also records when the first line of results reached stdout. Same set-up as `cli_speed.py`: the
installed `nbsearch` console script with `PYTHONPATH` at each checkout, a fresh XDG cache for each first/next pair,
HF_ENDPOINT at a closed local port and no HF_HUB_OFFLINE. Each figure is a median of `runs`.
"""
import os, sys, time, shutil, tempfile, subprocess, statistics as stats
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pathlib import Path
from fastcore.script import call_parse
from cli_speed import _env, corpus, q, root

def timed(env):
    "Seconds until the first line of results, and until exit, of one `nbsearch` search; `None`s if it failed"
    exe = Path(sys.executable).parent/'nbsearch'
    t = time.perf_counter()
    p = subprocess.Popen([exe, q, corpus, '-k', '5'], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = p.stdout.readline(); t1 = time.perf_counter()-t
    rest,err = p.stdout.read(),p.stderr.read(); p.wait(); t2 = time.perf_counter()-t
    ok = p.returncode==0 and b'ports.ipynb' in first+rest
    if not ok: print(f'  run failed ({p.returncode}): {err.decode()[-300:]}', file=sys.stderr)
    return (t1, t2) if ok else (None, None)

def med(ts):
    ok = [t for t in ts if t is not None]
    return f'{stats.median(ok):7.2f}s' if ok else '  failed'

@call_parse
def main(
    baseline:str='/tmp/cli-baseline', # A checkout to compare against
    new:str=None, # The checkout to measure (default: this one)
    runs:int=3, # first/next pairs per version, each in a fresh cache
):
    "Time the first and the next search of tests/corpus, results and exit, for this checkout and `baseline`"
    vers = dict(baseline=Path(baseline).resolve(), new=Path(new).resolve() if new else root)
    res = {}
    with tempfile.TemporaryDirectory(prefix='first-answer-') as tmp:
        for v,p in vers.items():
            res[v] = []
            for _ in range(runs):
                c = Path(tempfile.mkdtemp(dir=tmp)); e = _env(p, c)
                res[v].append((*timed(e), *timed(e)))
                shutil.rmtree(c, ignore_errors=True)
            print(f'{v} done', file=sys.stderr)
    print(f'\n`nbsearch` first and next search of tests/corpus, median of {runs}, {os.cpu_count()} CPUs; no network, no HF_HUB_OFFLINE')
    print(f"{'version':9} {'first: results':>15} {'first: exit':>12} {'next: results':>14} {'next: exit':>11}")
    for v,rs in res.items(): print(f'{v:9} {med([r[0] for r in rs]):>15} {med([r[1] for r in rs]):>12} {med([r[2] for r in rs]):>14} {med([r[3] for r in rs]):>11}')
