"`%load_ext nbsearch` and the `%nbsearch` line magic, in a real IPython shell"
import os, sys, subprocess
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
