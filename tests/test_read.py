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

## Every pass over text is linear (issue 8 item 4)

import re, random
from nbsearch.read import _drop_blobs, _subtitle, _fence_re, _directive_re, _data_uri_re, _clean_src

N = 2**20  # 1 MB of adversarial text per case
budget = 5.0  # seconds per case on a loaded machine (about 0.5 s when idle); the quadratic patterns these replace took minutes at 60 KB

def timed(f, s):
    t = time.perf_counter(); f(s); return time.perf_counter()-t

adversarial = {
    'headings': (headings, ['# a' + ' #'*(N//2) + 'b', '# a' + ' #'*(N//2), '#'*N, '# ' + ' \t'*(N//2) + 'x', '# a\n'*(N//4),
                            '```\n'*(N//4), '```\n' + 'x\n'*(N//2), '~~~\n```\n'*(N//8), '```' + '`'*N, '# ' + '#'*N + 'a']),
    'subtitle': (_subtitle, ['> a' + ' '*N + 'b', '>' + ' '*N, '> a' + '\n'*N, '> ' + '\xa0'*N + 'b', '> \n'*(N//3), '>'*N]),
    'script/style': (_drop_blobs, ['<script '*(N//8), '<style '*(N//7), '<script>' + '</script'*(N//8), '</script' + ' '*N,
                                   '<script><style>'*(N//15), '<script>' + ' '*N + '</script>', '<SCRIPT>a</script>'*(N//18),
                                   '<script>' + '</style>'*(N//8)]),
    'directives': (lambda s: _directive_re.sub('', s), [' '*N, (' '*1000+'\n')*(N//1001), '#|'*(N//2), '  #|' + 'x'*N, ' \t'*(N//2) + '#']),
    'data URIs': (lambda s: _data_uri_re.sub('', s), ['data:' + 'a'*N, 'data:a;base64,' + 'A'*N + '!', 'data:'*(N//5),
                                                     ('data:' + 'a'*100 + ';')*(N//106), 'data:a;base64,'*(N//14)]),
    'words': (lambda s: word_offsets([s]), ['a '*(N//2), '.'*N, ' '*N, 'a'*N]),
    'code cell': (lambda s: _clean_src(mk_cell(s)), ['#| x\n'*(N//5), ' '*N + '#|', 'data:' + 'a'*N]),
    'markdown cell': (lambda s: _clean_src(mk_cell(s, 'markdown')), ['<script '*(N//8), 'data:a;base64,' + 'A'*N + '!']),
}

@pytest.mark.parametrize('name', list(adversarial))
def test_linear_on_adversarial_input(name):
    "Each pattern and pass over text takes under `budget` seconds on every 1 MB input built to make it backtrack"
    f,ss = adversarial[name]
    for i,s in enumerate(ss):
        if isinstance(s, str) and len(s)<N//2: continue
        t = timed(f, s)
        assert t<budget, f'{name} case {i} ({s[:20]!r}...): {t:.1f}s'

def test_read_nb_linear(tmp_path):
    "A notebook whose 1 MB cells are each built to make a pattern backtrack is read and cut into passages in seconds"
    srcs = ['# a' + ' #'*(N//2) + 'b', '> a' + ' '*N + 'b', '<script '*(N//8), 'data:' + 'a'*N, '# T\n' + '> ' + '\xa0'*N + 'b']
    p = mk(tmp_path/'hostile.ipynb', *srcs)
    t = time.perf_counter()
    with warnings.catch_warnings(): warnings.simplefilter('ignore'); nb = read_nb(p)
    ps = passages(nb)
    assert time.perf_counter()-t < 10
    assert nb.title=='a' and len(nb.cells)==5 and len(ps)>0  # the title cell was cut to `max_cell_chars`

# The patterns the linear code replaced: on short text both must agree exactly
old_head = re.compile(r'^(#{1,6})[ \t]+(.+?)[ \t#]*$', re.M)
old_sub = re.compile(r'^>[ \t]*(\S.*?)\s*$', re.M)
old_blob = re.compile(r'<(script|style)\b.*?</\1\s*>', re.S|re.I)
pieces = ['#', '##', '# ', ' ', '\t', '\n', '>', '> ', 'a', 'b c', '\xa0', '\x0b', '```', '~~~', '<script>', '<script ', '</script>',
          '</script >', '<Style>', '</STYLE>', '</style\n>', '<scripts>', 'x']

@pytest.mark.parametrize('seed', range(4))
def test_same_as_old_patterns(seed):
    "`headings`, `_subtitle` and `_drop_blobs` give what the regular expressions they replace gave, on random text"
    rnd = random.Random(seed)
    for _ in range(3000):
        s = ''.join(rnd.choice(pieces) for _ in range(rnd.randint(0, 30)))
        assert headings(s)==[(len(h), t) for h,t in old_head.findall(_fence_re.sub('', s))], repr(s)
        assert _subtitle(s)==next(iter(old_sub.findall(s)), None), repr(s)
        assert _drop_blobs(s)==old_blob.sub('', s), repr(s)

## Text that cannot be stored or shown, names and arguments (issue 8 items 5, 6 and 12)

def strings(nb):
    "Every string in `nb` and its passages"
    yield from [nb.title, nb.subtitle]
    for c in nb.cells: yield from [c.source, c.outputs]
    for p in passages(nb): yield from [p.text, p.ctx, *p.parts]

@pytest.mark.parametrize('seed', range(3))
def test_every_string_encodes(tmp_path, seed):
    "Lone surrogates and control characters anywhere in a notebook: every string read encodes as UTF-8 and holds no control character"
    rnd = random.Random(seed)
    bad = ['\ud800', '\udfff', '\x1e', '\x1b[2J', '\x1b]0;t\x07', '\x00', '\r', '\r\n', '\x9b', '\x7f', 'a', ' ', '\n', '# ', '> ', '\U0001F600']
    txt = lambda: ''.join(rnd.choice(bad) for _ in range(40))
    cells = [dict(cell_type=rnd.choice(['markdown', 'code']), source=txt(), metadata={}, outputs=[dict(output_type='stream', name='stdout', text=txt())])
             for _ in range(20)]
    p = tmp_path/'bad.ipynb'; p.write_text(json.dumps(dict(cells=cells, metadata={}, nbformat=4, nbformat_minor=5)))
    for s in strings(read_nb(p, outputs=True)):
        s.encode('utf-8')
        assert not re.search('[\x00-\x08\x0b-\x1f\x7f-\x9f]', s), repr(s)

def test_non_utf8_name(tmp_path):
    "A notebook whose name is not UTF-8 is found and read; its title from the name is repaired"
    b = os.path.join(os.fsencode(tmp_path), b'caf\xe9.ipynb')
    with open(b, 'wb') as f: f.write(json.dumps(dict(cells=[dict(cell_type='code', source='x = 1', metadata={}, outputs=[])], metadata={})).encode())
    for d in [tmp_path, os.fsencode(tmp_path)]:
        (p,) = get_nb_paths(d)
        assert os.fsencode(p)==b
    assert read_nb(p).title=='caf\ufffd'

@pytest.mark.parametrize('arg,exc,msg', [('', ValueError, 'empty path'), (None, ValueError, 'None'), ([], ValueError, 'empty list'),
                                         ('  ', ValueError, 'empty path'), (3, ValueError, 'Not a path'),
                                         ('~nosuchuser/x', FileNotFoundError, 'no home folder')])
def test_paths_that_name_nothing(arg, exc, msg):
    with pytest.raises(exc, match=msg): get_nb_paths(arg)

def test_deep_folder(tmp_path):
    "A folder 1,000 levels deep is walked, in a fresh interpreter with the default recursion limit"
    p = tmp_path
    for _ in range(1000): p = p/'a'; p.mkdir()
    mk(p/'deep.ipynb', '# Deep')
    out = run_py(f"from nbsearch.read import get_nb_paths, read_nb; print(read_nb(get_nb_paths({str(tmp_path)!r})[0]).title)")
    assert out.strip()=='Deep'
    (p/'deep.ipynb').unlink()
    while p!=tmp_path: p.rmdir(); p = p.parent  # pytest's cleanup would recurse too deep

## Cell ids, tags and text notebooks (issue 11 items 2-4)

def test_ids_tags_mtime(tmp_path):
    "Cell ids and tags, notebook tags (metadata and front matter) and mtime; no made-up id for a cell without one"
    cells = [dict(cell_type='raw', id='fm', source='---\ncategories: [b]\n---', metadata={}),
             dict(cell_type='markdown', id='c1', source='# T', metadata=dict(tags=['x'])),
             dict(cell_type='code', source='1', metadata={}, outputs=[])]
    p = tmp_path/'a.ipynb'; p.write_text(json.dumps(dict(cells=cells, metadata=dict(tags=['a']), nbformat=4, nbformat_minor=5)))
    nb = read_nb(p)
    assert [(c.idx, c.id, c.tags) for c in nb.cells]==[(1, 'c1', ('x',)), (2, None, ())]
    assert nb.tags==('a', 'b') and nb.mtime==os.stat(p).st_mtime
    assert read_nb(p).cells[1].id is None  # the same on every read
    assert Cell(0, 'code', 'x').id is None and Nb('p', 't', []).tags==()  # old constructor calls still work

def test_formats_opt_in(tmp_path):
    "Text notebooks are found only when asked for; a .py file without `# %%` never is"
    mk(tmp_path/'a.ipynb', '# A')
    (tmp_path/'b.md').write_text('# B\n```python\nx\n```')
    (tmp_path/'c.qmd').write_text('---\ntitle: C\n---\n```{python}\nx\n```')
    (tmp_path/'d.py').write_text('# %%\nx = 1')
    (tmp_path/'e.py').write_text('x = 1  # %% not at the start\n')
    os.mkfifo(tmp_path/'f.py')
    names = lambda **kw: [p.name for p in get_nb_paths(tmp_path, **kw)]
    assert names()==['a.ipynb']
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        assert names(formats=('ipynb', 'md', 'qmd', 'py'))==['a.ipynb', 'b.md', 'c.qmd', 'd.py']
    assert len(w)==1 and 'f.py' in str(w[0].message)
    assert [read_nb(tmp_path/n).title for n in ['b.md', 'c.qmd', 'd.py']]==['B', 'C', 'd']
    assert [c.cell_type for c in read_nb(tmp_path/'b.md').cells]==['markdown', 'code']

text_adversarial = {
    'md fences': '```python\n'*(N//10),
    'md unclosed': '```python\n' + 'x\n'*(N//2),
    'md backticks': '`'*N,
    'md front matter': '---\n' + 'k: [' + 'a,'*(N//2) + ']\n' + '  - x\n'*(N//7) + '---\n',
    'md unclosed front matter': '---\n' + 'a: b\n'*(N//5),
    'qmd chunks': '```{python}\n```\n'*(N//16),
    'py markers': '# %%\n'*(N//5),
    'py markdown': '# %% [markdown]\n' + '# # h\n'*(N//6),
    'py tags': '# %% tags=[' + '"a",'*(N//4) + ']\n',
    'py header': '# ---\n' + '# a: b\n'*(N//7) + '# %%\n',
}

@pytest.mark.parametrize('name', list(text_adversarial))
def test_text_formats_linear(tmp_path, name):
    "Reading a 1 MB text notebook built to make the reader backtrack stays within `budget` (the cut to `max_cell_chars` aside)"
    p = tmp_path/('x.'+name.split()[0]); p.write_text(text_adversarial[name])
    t = time.perf_counter()
    with warnings.catch_warnings(): warnings.simplefilter('ignore'); read_nb(p)
    assert time.perf_counter()-t < budget*2, name  # 200,000 tiny cells: linear, but each costs what any cell costs
