"""Warm and cold query time of a bi-encoder search (the packaged all-MiniLM-L6-v2), this checkout against another, in turns.

    python bench/maxsim_speed.py /tmp/maxsim-base --corpus ../shared/corpora --base-index /tmp/base.db --index /tmp/new.db

`base` is a copy of the code to compare with (e.g. `git archive main | tar -x -C /tmp/maxsim-base`). Each turn runs one process per
checkout: it loads the model, runs the query once on its index (`--base-index`/`--index`, copies of an index that already holds
the folder, so the turn measures a warm search), then times `n` repeats of it; the median of each turn is printed, then the median
over turns and the ratio. `--cold` also times one query of each on a fresh index file (folder read, static vectors, MiniLM on the shortlist);
`--uncached`, in turns, the query on copies of the indexes without cached passage vectors (MiniLM on the shortlist only).
"""
import json, os, subprocess, sys, tempfile, statistics
from pathlib import Path
from fastcore.script import call_parse

_child = r'''
import sys, time, json, statistics, warnings
warnings.simplefilter('ignore')
from nbsearch.core import rank_nbs
from nbsearch.models import load_model, offline_model
q,corpus,index,n = sys.argv[1],sys.argv[2],sys.argv[3],int(sys.argv[4])
m = load_model(offline_model())
t = time.perf_counter(); hs = rank_nbs(q, corpus, model=m, index=index); first = time.perf_counter()-t
ts = []
for _ in range(n):
    t = time.perf_counter(); rank_nbs(q, corpus, model=m, index=index); ts.append(time.perf_counter()-t)
print(json.dumps(dict(first=first, median=statistics.median(ts), top=[h.title for h in hs[:3]])))
'''

def _run(code_dir, q, corpus, index, n):
    env = os.environ | {'PYTHONPATH': str(code_dir)}
    r = subprocess.run([sys.executable, '-c', _child, q, corpus, str(index), str(n)], env=env, capture_output=True, text=True, cwd=code_dir)
    if r.returncode: raise RuntimeError(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])

@call_parse
def main(
    base:str, # Folder of the code to compare with
    corpus:str='../shared/corpora', # Folder searched
    base_index:str=None, # Index file for the base code (already holding `corpus`)
    index:str=None, # Index file for this checkout (already holding `corpus`)
    q:str='how do I stop the process that is listening on a port', # The query
    turns:int=3, # Turns of (base, this)
    n:int=7, # Timed repeats per turn
    cold:bool=False, # Also time one query on a fresh index, each
    uncached:bool=False, # Also time, in turns, the query on copies of the indexes with no passage vectors cached (`pvecs`, `ptoks`)
):
    "Print warm query times (median of `n` repeats, per turn) of `base` and this checkout, and their ratio"
    here,corpus = Path(__file__).resolve().parent.parent,str(Path(corpus).resolve())
    res = {'base': [], 'this': []}
    for i in range(turns):
        for k,d,ix in (('base', base, base_index), ('this', here, index)):
            o = _run(d, q, corpus, ix, n); res[k].append(o['median'])
            print(f"turn {i+1} {k}: {o['median']*1000:.0f} ms median of {n} (first {o['first']*1000:.0f} ms); top 3: {o['top']}", flush=True)
    b,t = statistics.median(res['base']),statistics.median(res['this'])
    print(f"warm: base {b*1000:.0f} ms, this {t*1000:.0f} ms, ratio {t/b:.2f}")
    if uncached:
        import shutil, sqlite3
        for i in range(turns):
            for k,d,ix in (('base', base, base_index), ('this', here, index)):
                with tempfile.TemporaryDirectory() as tmp:
                    c = Path(tmp)/'index.db'; shutil.copy(ix, c)
                    db = sqlite3.connect(c)
                    for t in ('pvecs', 'ptoks'):
                        if db.execute("select 1 from sqlite_master where name=?", (t,)).fetchone(): db.execute(f'delete from {t}')
                    db.commit(); db.close()
                    o = _run(d, q, corpus, c, 1)
                    print(f"turn {i+1} {k}: first query with no passage vectors cached {o['first']*1000:.0f} ms, then {o['median']*1000:.0f} ms", flush=True)
    if cold:
        for k,d in (('base', base), ('this', here)):
            with tempfile.TemporaryDirectory() as tmp:
                o = _run(d, q, corpus, Path(tmp)/'index.db', 1)
                print(f"cold {k}: first query on a fresh index {o['first']:.1f} s, then {o['median']*1000:.0f} ms")
