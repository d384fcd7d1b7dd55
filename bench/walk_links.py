"""Time finding the notebooks of a folder (`nbsearch.read._nb_files`, which a warm search runs every time) at a baseline commit
and in this checkout, in turns: median per call, and their ratio. Used for following symlinked folders (00_read).

    python bench/walk_links.py /tmp/firstidx-nb1000 2ea53cb     # a folder of notebooks, the baseline commit
"""
import sys, time, statistics, subprocess, importlib.util, tempfile, os
folder = sys.argv[1] if len(sys.argv)>1 else '/tmp/firstidx-nb1000'
base = sys.argv[2] if len(sys.argv)>2 else '2ea53cb'
src = subprocess.run(['git', 'show', f'{base}:nbsearch/read.py'], capture_output=True, text=True, check=True).stdout
f = os.path.join(tempfile.mkdtemp(), 'old_read.py'); open(f, 'w').write(src)
spec = importlib.util.spec_from_file_location('old_read', f); old = importlib.util.module_from_spec(spec); spec.loader.exec_module(old)
import nbsearch.read as new
assert old._nb_files(folder)==new._nb_files(folder)
n = len(new._nb_files(folder))
def per_call(fn, reps=20):
    t = time.perf_counter()
    for _ in range(reps): fn(folder)
    return (time.perf_counter()-t)/reps
ts = {'old': [], 'new': []}
for _ in range(9):
    for k,m in (('old', old), ('new', new)): ts[k].append(per_call(m._nb_files))
o,nw = statistics.median(ts['old']),statistics.median(ts['new'])
print(f'{n} notebooks in {folder}: baseline {base} {o*1e3:.2f} ms, new {nw*1e3:.2f} ms, new/baseline {nw/o:.3f} (median of 9 turns of 20 calls)')
