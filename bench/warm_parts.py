"""Where a warm query's time goes, part by part: this checkout against others, in turns, on the same machine and index.

    python bench/speed.py ...  # or any folder of notebooks, e.g. 1,000 made by `speed.replicate`:
    python bench/warm_parts.py /tmp/nb1000 --index /tmp/nb1000.db --baseline /tmp/base --rounds 3

Each checkout (`--baseline` ones first, then this one) runs in a subprocess with `PYTHONPATH` set to it, `rounds` times in
turn, so that a busy machine slows them alike. A run builds the index if it must (the first query), then times the 8
queries of `bench/speed.py` `reps` times each, warm: with the tiny cross-encoder of TinyBERT-L2's shape as a search uses it by
default and scoring 64 passages, and with BM25 alone. Each part is the median over those queries of the time spent in it per query (ms); 'model'
is stage 3 (`score`), 'ours' the rest. Parts a checkout lacks read 0. A ratio is the median over turns of this checkout's time over the
first baseline's in the same turn, which a load that changes from turn to turn (other work on the machine) moves less.
"""
import os, sys, json, time, subprocess, statistics as stats, functools, warnings
from pathlib import Path
from fastcore.script import call_parse

parts = [('find', 'search', ('_nb_files', 'get_nb_paths')), ('sync', 'index', 'sync'), ('lexical', 'index', 'lexical'),
         ('dense leg', 'search', '_dense_leg'), ('passages', 'index', 'passages'), ('candidates', 'search', 'candidates'),
         ('shortlist', 'search', 'shortlist'), ('model', 'search', 'score'), ('rank', 'search', 'rank')]

def _measure(folder, index, reps):
    "`{setting: {part: ms}}` for this process' nbsearch"
    import nbsearch.search as S, nbsearch.index as I
    from nbsearch.core import rank_nbs
    from nbsearch.models import tiny_cross_encoder, load_model
    sys.path.insert(0, str(Path(__file__).parent)); from speed import queries
    warnings.simplefilter('ignore')
    acc = {}
    def timed(name, f):
        @functools.wraps(f)
        def _f(*a, **k):
            t = time.perf_counter()
            try: return f(*a, **k)
            finally: acc[name] = acc.get(name, 0)+time.perf_counter()-t
        return _f
    for name,mod,attrs in parts:
        for a in [attrs] if isinstance(attrs, str) else attrs:
            if mod=='index' and hasattr(I.NbIndex, a): setattr(I.NbIndex, a, timed(name, getattr(I.NbIndex, a))); break
            if mod=='search' and hasattr(S, a): setattr(S, a, timed(name, getattr(S, a))); break
    mp = Path(index).with_suffix('.tiny')
    if not mp.exists(): tiny_cross_encoder(mp)
    m,res = load_model(str(mp)),{}
    for label,kw in (('cross-encoder, default', dict(model=m)), ('cross-encoder, 64 passages', dict(model=m, rerank=64)), ('BM25 alone', dict(model=None))):
        rank_nbs(queries[0], folder, index=index, k=10, **kw); rank_nbs(queries[1], folder, index=index, k=10, **kw)
        rows = []
        for q in queries*reps:
            acc.clear(); t = time.perf_counter(); rank_nbs(q, folder, index=index, k=10, **kw)
            acc['total'] = time.perf_counter()-t; acc['ours'] = acc['total']-acc.get('model', 0); rows.append(dict(acc))
        res[label] = {k:stats.median(r.get(k, 0) for r in rows)*1000 for k in ['total', 'ours']+[n for n,*_ in parts]}
    return res

@call_parse
def main(
    folder:str, # A folder of notebooks
    index:str, # The index file to use (built on the first query if missing)
    baseline:str=None, # Checkouts of other nbsearch versions (space-separated), to time in turn with this one
    rounds:int=3, # Turns each checkout gets
    reps:int=2, # Times each query is run in a turn
    json_out:str=None, # Internal: where a subprocess writes its numbers
):
    "Time the parts of a warm query of `folder`, in this checkout and in each of `baseline`"
    if json_out: Path(json_out).write_text(json.dumps(_measure(folder, index, reps))); return
    here,runs = str(Path(__file__).parent.parent.absolute()),{}
    for r in range(rounds):
        for b in (baseline or '').split()+[here]:
            out = Path(index).with_suffix(f'.{os.getpid()}.json')
            env = {**os.environ, 'PYTHONPATH': os.pathsep.join(filter(None, [str(Path(b).absolute()), os.environ.get('PYTHONPATH')]))}
            subprocess.run([sys.executable, __file__, folder, index, '--reps', str(reps), '--json-out', str(out)], check=True, env=env)
            runs.setdefault(b, []).append(json.loads(out.read_text())); out.unlink()
    for label in runs[here][0]:
        print(f'\n== {label}: ms per warm query, median over {rounds} turns' + (f" (ratio: this / {Path(baseline.split()[0]).name}, the median of each turn's)" if baseline else ''))
        names = list(runs[here][0][label])
        print(f"{'part':12}" + ''.join(f'{Path(b).name[:14]:>16}' for b in runs))
        for n in names:
            v = {b:stats.median(o[label][n] for o in rs) for b,rs in runs.items()}
            pairs = [(h[label][n], f[label][n]) for h,f in zip(runs[here], runs[next(iter(runs))])]
            ratio = stats.median(h/f for h,f in pairs) if all(f for _,f in pairs) else None  # turn by turn: a load that drifts between turns cancels
            print(f'{n:12}' + ''.join(f'{x:16.1f}' for x in v.values()) + (f'   ({ratio:.2f}x)' if baseline and ratio else ''))
