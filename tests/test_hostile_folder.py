"""Issue 8's "done when": one folder mixing every hostile file with two good notebooks is searched by the real command
with exit 0 in under 30 s, ranks the good ones first, names each skipped file once, and changes no byte of any file."""
import os, sys, json, time, hashlib, subprocess
from pathlib import Path
import pytest

def _nb(cells):
    return dict(nbformat=4, nbformat_minor=5, metadata={}, cells=[
        dict(cell_type=t, id=f'c{i}', metadata={}, source=s, **(dict(outputs=[], execution_count=None) if t=='code' else {}))
        for i,(t,s) in enumerate(cells)])

def _write(p, cells, **kw): Path(p).write_text(json.dumps(_nb(cells), **kw))

skipped = ['fifo.ipynb', 'zero.ipynb', 'dangling.ipynb', 'huge.ipynb', 'broken.ipynb', 'binary.ipynb', 'caf']

@pytest.fixture
def hostile(tmp_path):
    d = tmp_path/'nbs'; d.mkdir()
    _write(d/'ports.ipynb', [('markdown', '# Free a busy port\n> Find and kill the process listening on a TCP port'),
                             ('code', 'import psutil\ndef kill_port(port):\n    "Kill every process listening on `port`"\n    ...')])
    _write(d/'git.ipynb', [('markdown', '# Undo a git commit\n> Move a branch back without losing work'), ('code', '!git reset --soft HEAD~1')])
    os.mkfifo(d/'fifo.ipynb')                                   # would hang a reader
    os.symlink('/dev/zero', d/'zero.ipynb')                     # would exhaust memory
    os.symlink(d/'nowhere', d/'dangling.ipynb')
    with open(d/'huge.ipynb', 'wb') as f: f.truncate(6*2**30)   # 6 GB, sparse
    _write(d/'heading.ipynb', [('markdown', '# a' + ' #'*500_000)])  # 1 MB adversarial cells for the regular expressions
    _write(d/'script.ipynb', [('markdown', '<script '*130_000)])
    _write(d/'quote.ipynb', [('markdown', '> a' + ' '*1_000_000 + 'b')])
    (d/'surrogate.ipynb').write_text(json.dumps(_nb([('markdown', '# Lone \ud800 surrogate')]), ensure_ascii=True))
    _write(d/'sep.ipynb', [('markdown', '# Separator\na\x1eb c')])
    _write(d/'title.ipynb', [('markdown', '# Ports \x1b]0;pwned\x07\x1b[2J free')])
    _write(d/'new\nline.ipynb', [('markdown', '# A newline in the name')])
    (d/'broken.ipynb').write_text('{"cells": [')
    (d/'binary.ipynb').write_bytes(bytes(range(256))*16)
    with open(os.path.join(os.fsencode(d), b'caf\xe9.ipynb'), 'wb') as f: f.write(json.dumps(_nb([('markdown', '# Cafe')])).encode())
    p = str(d/'deep')
    for _ in range(1000): os.mkdir(p); p += '/d'              # a folder 1,000 levels deep
    _write(Path(p).parent/'deep.ipynb', [('markdown', '# Deep down')])
    yield d
    os.unlink(Path(p).parent/'deep.ipynb')
    while p!=str(d/'deep'): p = os.path.dirname(p); os.rmdir(p)  # bottom up: `shutil.rmtree` recurses

def _snapshot(d):
    "Every entry under `d` as its type and size, and the SHA-1 of each regular file's bytes (the sparse 6 GB file by its stat alone)"
    res,todo = {},[os.fsencode(d)]
    while todo:  # by hand: `os.walk` recurses, and one folder is 1,000 levels deep
        with os.scandir(todo.pop()) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False): todo.append(e.path); continue
                p = e.path; st = os.lstat(p)
                h = hashlib.sha1(open(p, 'rb').read()).hexdigest() if e.is_file(follow_symlinks=False) and st.st_size<2**23 else None
                res[p] = (st.st_mode, st.st_size, st.st_mtime_ns, h)
    return res

def _run(q, d, tmp_path):
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'XDG_CACHE_HOME': str(tmp_path/'cache')}
    exe = Path(sys.executable).parent/'nbsearch'
    cmd = [str(exe)] if exe.exists() else [sys.executable, '-c', 'from nbsearch.cli import nbsearch; nbsearch()']
    t = time.perf_counter()
    r = subprocess.run(cmd+[q, str(d), '--model', 'bm25', '-k', '3'], env=env, capture_output=True, text=True, timeout=120)
    return r, time.perf_counter()-t

def test_hostile_folder(hostile, tmp_path):
    before = _snapshot(hostile)
    assert len(before)>=16  # every hostile file and the two good ones
    r,dt = _run('kill the process on port 8000', hostile, tmp_path)
    assert r.returncode==0, r.stderr
    assert dt<30, dt
    assert r.stdout.splitlines()[0].split()[-3].split(':')[0].endswith('ports.ipynb'), r.stdout
    for name in skipped: assert r.stderr.count(name)==1, (name, r.stderr)
    assert 'Traceback' not in r.stderr and '\x1b' not in r.stdout+r.stderr
    r,dt = _run('undo a git commit', hostile, tmp_path)  # again, warm: the other good notebook ranks first
    assert r.returncode==0 and dt<30, r.stderr
    assert 'git.ipynb' in r.stdout.splitlines()[0], r.stdout
    assert _snapshot(hostile)==before
