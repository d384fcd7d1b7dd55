"""Reading hostile files: what must never hang, blow up memory, take quadratic time or return text that cannot be stored.

The notebook `nbs/00_read.ipynb` shows and tests the behaviour; these tests guard it with timeouts and 1 MB inputs."""
import os, sys, json, time, socket, subprocess, warnings, pytest
from pathlib import Path
from fastcore.nbio import new_nb, mk_cell, write_nb
from nbsearch.read import get_nb_paths, read_nb, passages, headings, word_offsets, Nb, Cell
import nbsearch.read as rd

def mk(p, *srcs):
    "A notebook at `p` whose cells have markdown sources `srcs`"
    p.parent.mkdir(parents=True, exist_ok=True)
    write_nb(new_nb([mk_cell(s, 'markdown') for s in srcs]), p)
    return p

def run_py(code, timeout=60):
    "Run `code` in a fresh Python, failing the test if it takes over `timeout` seconds (a hang would block pytest)"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=timeout)
    assert r.returncode==0, r.stderr
    return r.stdout

## Special and huge files (issue 8 item 3)

def test_special_files_never_hang(tmp_path):
    "A FIFO, a link to /dev/zero, a folder and a socket named `.ipynb`: found with one warning, never opened, in a bounded time"
    mk(tmp_path/'good.ipynb', '# Good')
    os.mkfifo(tmp_path/'fifo.ipynb'); (tmp_path/'zero.ipynb').symlink_to('/dev/zero'); (tmp_path/'dir.ipynb').mkdir()
    s = socket.socket(socket.AF_UNIX); s.bind(str(tmp_path/'sock.ipynb'))
    try:
        out = run_py(f'''
import warnings
from pathlib import Path
from nbsearch.read import get_nb_paths, read_nb
d = Path({str(tmp_path)!r})
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter('always')
    print([p.name for p in get_nb_paths(d)])
print(len(w), all(n in str(w[0].message) for n in ['fifo.ipynb', 'zero.ipynb', 'sock.ipynb']))
for n in ['fifo', 'zero', 'dir', 'sock']:
    try: read_nb(d/(n+'.ipynb')); print('read', n)
    except ValueError as e: print(n, e)''')
    finally: s.close()
    lines = out.splitlines()
    assert lines[0]=="['good.ipynb']" and lines[1]=='1 True'
    assert all('not a regular file' in l for l in lines[2:]) and len(lines)==6

def test_sparse_file_refused_without_reading(tmp_path):
    "A 6 GB sparse notebook is refused by its size at once"
    p = tmp_path/'huge.ipynb'
    with open(p, 'wb') as f: f.truncate(6*2**30)
    t = time.perf_counter()
    with pytest.raises(ValueError, match='over the 128 MB limit'): read_nb(p)
    assert time.perf_counter()-t < 1

def test_read_is_bounded(tmp_path, monkeypatch):
    "Never more than `max_nb_bytes` are read, even from a file that reports a smaller size than it has"
    p = mk(tmp_path/'a.ipynb', '# A ' + 'x'*5000)
    monkeypatch.setattr(rd, 'max_nb_bytes', 1000)
    with pytest.raises(ValueError, match='over the 0 MB limit'): read_nb(p)
    monkeypatch.setattr(rd, '_check_file', lambda st: None)  # as if the file grew after it was checked
    with pytest.raises(ValueError, match='grew'): read_nb(p)
