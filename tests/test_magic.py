"`%load_ext nbsearch` and the `%nbsearch` line magic, in a real IPython shell"
import os, re, sys, subprocess
from pathlib import Path
import pytest

IPython = pytest.importorskip('IPython')
REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO/'tests'/'corpus'

@pytest.fixture(scope='module')
def ip(tmp_path_factory):
    from IPython.core.interactiveshell import InteractiveShell
    os.environ['XDG_CACHE_HOME'] = str(tmp_path_factory.mktemp('cache'))
    shell = InteractiveShell.instance()
    shell.run_line_magic('load_ext', 'nbsearch')
    yield shell
    InteractiveShell.clear_instance()

def test_magic_shows_hits_with_cell_links(ip, monkeypatch):
    monkeypatch.chdir(CORPUS)
    res = ip.run_line_magic('nbsearch', '"kill the process on port 8000" --path . -k 2 --model bm25')
    assert res.hits[0].title == 'Free a busy port'
    md = res._repr_markdown_()
    cid = __import__('json').loads((CORPUS/'tools/ports.ipynb').read_text())['cells'][res.hits[0].cell]['id']
    assert f'[Free a busy port](tools/ports.ipynb#cell-id={cid})' in md, md  # relative to the kernel's folder, opens at the cell
    assert 'Free a busy port' in repr(res)

def test_magic_errors_are_messages(ip, capsys):
    assert ip.run_line_magic('nbsearch', f'port --path {CORPUS/"nope"} --model bm25') is None
    assert ip.run_line_magic('nbsearch', '-k 2') is None
    out = capsys.readouterr().out
    assert 'No such notebook or folder' in out and 'required' in out

def test_import_stays_light():
    "`import nbsearch` loads neither the magic nor IPython; only `%load_ext` does"
    code = 'import sys, nbsearch; print(any(m in sys.modules for m in ("nbsearch.magic", "IPython", "torch")))'
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env={**os.environ, 'PYTHONPATH': str(REPO)})
    assert r.stdout.strip() == 'False', r

def test_magic_help_is_not_an_exit(ip, capsys):
    "`%nbsearch --help` prints the help, and never raises SystemExit (which would stop a script)"
    ip.run_line_magic('nbsearch', '--help')
    assert 'QUERY' in capsys.readouterr().out

def _write_nb(d, name, title, code):
    cells = [dict(cell_type='markdown', metadata={}, id='m1', source=title),
             dict(cell_type='code', metadata={}, id='c1', outputs=[], execution_count=None, source=code)]
    (d/name).write_text(__import__('json').dumps(dict(nbformat=4, nbformat_minor=5, metadata={}, cells=cells)))

def test_magic_escapes_what_notebooks_hold(ip, tmp_path, monkeypatch):
    "A notebook's HTML, links and pipes show as text in the table; only the title links, to the notebook; no control character reaches the terminal"
    _write_nb(tmp_path, 'x (1) <i>.ipynb', '# Zebra <img src=x onerror=alert(1)> [y](javascript:alert(2))',
              '"<a href=javascript:alert(3)>zebra</a><style>body{display:none}</style> a\\|b" # groom')
    _write_nb(tmp_path, 'new\nline\x1b[31m.ipynb', '# Zebra grooming', 'zebra_groom()')
    monkeypatch.chdir(tmp_path)
    res = ip.run_line_magic('nbsearch', '"zebra groom <b>x</b>" --path . --model bm25')
    assert len(res.hits) == 2
    md = res._repr_markdown_()
    assert '<' not in md and r'&lt;img src=x onerror=alert\(1\)&gt;' in md and '&lt;style&gt;' in md, md
    rows = [r.replace('\\\\', '').replace('\\|', '').replace('\\[', '').replace('\\]', '') for r in md.splitlines()[2:]]  # what is not escaped
    assert [r.count('|') for r in rows] == [6, 6], md  # five columns each
    assert [re.findall(r'\[[^]]*\]\(([^)]*)\)', r) for r in rows] == [['x%20%281%29%20%3Ci%3E.ipynb#cell-id=c1'], ['new%0Aline%1B%5B31m.ipynb#cell-id=c1']], md
    assert '<' not in ip.run_line_magic('nbsearch', '"<b>qqqzzz</b>" --path . --model bm25')._repr_markdown_()
    txt = repr(res)
    assert '\x1b' not in txt and len(txt.splitlines()) == 4 and r'new\nline\x1b[31m.ipynb' in txt, txt
