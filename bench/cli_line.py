"""The cost of `path:LINE` in `nbsearch`'s text output, on big notebooks: the line of each hit's cell, found as the command
did before (`nbsearch.server.cell_line`, which reads and decodes the whole file, then scans it with a look-behind regex)
and as it does now (`nbsearch.cli._line` -> `nbsearch.read.cell_id_line`, which maps the file and scans only up to the
cell's id, for a literal first). Both run in this process, on the same files, the hit's cell the last of each notebook
(the worst case for both). With `--cmd`, also the warm command `nbsearch Q FOLDER --model bm25 -k N`, text against
`--json` (which finds no line), as the review measured it.

    python bench/cli_line.py [--n 4] [--mb 120] [--dir /tmp/nbsearch-bench-line] [--cmd]
"""
import argparse, json, os, subprocess, sys, time
from pathlib import Path

def make(d, n, mb):
    "`n` notebooks of about `mb` MB each: a code cell with a long stream output, then a markdown cell with id `hit` (made once)"
    d.mkdir(parents=True, exist_ok=True)
    line = 'port traffic line 0123456789 abcdefghij "quoted" \\ back\n'
    k = int(mb*2**20/(len(json.dumps(line))+9))  # each line of the output, as `json.dumps(indent=1)` writes it
    for i in range(n):
        p = d/f'big{i}.ipynb'
        if p.exists() and abs(p.stat().st_size/2**20-mb) < mb*0.1: continue
        nb = dict(cells=[dict(cell_type='code', id='out', metadata={}, source=['print(traffic)'], execution_count=1,
                              outputs=[dict(output_type='stream', name='stdout', text=[line]*k)]),
                         dict(cell_type='markdown', id='hit', metadata={}, source=[f'port traffic {77+i}'])],
                  metadata={}, nbformat=4, nbformat_minor=5)
        p.write_text(json.dumps(nb, indent=1))
    return sorted(d.glob('big*.ipynb'))

def timed(f):
    t = time.perf_counter(); r = f(); return r, time.perf_counter()-t

if __name__=='__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('--n', type=int, default=4); ap.add_argument('--mb', type=float, default=120)
    ap.add_argument('--dir', default='/tmp/nbsearch-bench-line'); ap.add_argument('--cmd', action='store_true')
    a = ap.parse_args()
    from nbsearch.server import cell_line
    from nbsearch.cli import _line
    from nbsearch.search import Hit
    ps = make(Path(a.dir), a.n, a.mb)
    print(f'{len(ps)} notebooks of {sum(p.stat().st_size for p in ps)/len(ps)/2**20:.0f} MB, the hit in the last cell')
    for p in ps: p.read_bytes()  # both runs find the files in the page cache
    old,t_old = timed(lambda: [cell_line(p, 1, 'hit') for p in ps])
    new,t_new = timed(lambda: [_line(Hit(p, 1., 't', 1, 's', 'hit')) for p in ps])
    assert old==new, (old, new)
    print(f'line of {len(ps)} hits: before (cell_line) {t_old:.2f} s, now (cell_id_line) {t_new:.2f} s: {t_old/t_new:.1f}x faster; lines {new}')
    if a.cmd:
        env = {**os.environ, 'HF_HUB_OFFLINE': '1'}
        ix = Path(a.dir)/'index.db'
        run = lambda *x: subprocess.run([Path(sys.executable).parent/'nbsearch', 'port traffic 77', a.dir, '--model', 'bm25', '-k', str(len(ps)),
                                         '--index', ix, '-q', *x], capture_output=True, text=True, env=env)
        r,t_first = timed(run)  # indexes the notebooks
        assert r.returncode==0, r.stderr
        (rt,t_text),(rj,t_json) = timed(run), timed(lambda: run('--json'))
        print(f'warm command: text {t_text:.2f} s, --json {t_json:.2f} s (text/json {t_text/t_json:.2f}); first run {t_first:.1f} s')
        print(rt.stdout)
