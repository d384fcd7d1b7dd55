"Search filters (paths, dates, notebook formats) on a fixture folder: through `rank_nbs`, the `nbsearch` command and the MCP tool"
import os, sys, time, shutil, subprocess
from pathlib import Path
import pytest
from nbsearch.core import rank_nbs

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO/'tests'/'corpus'
OLD = time.mktime((2020, 1, 1, 0, 0, 0, 0, 0, -1))

@pytest.fixture
def folder(tmp_path):
    "The test corpus, plus a Markdown and a jupytext percent notebook; the blog notebooks dated 2020"
    d = tmp_path/'nbs'
    shutil.copytree(CORPUS, d)
    (d/'tools'/'zebra.md').write_text('---\ntitle: Zebra grooming\n---\n\n# Zebra grooming\n\nBrush the zebra stripes daily.\n\n```python\ngroom_zebra()\n```\n')
    (d/'tools'/'llama.py').write_text('# %% [markdown]\n# # Llama shearing\n# Shear the llama wool in spring.\n\n# %%\nshear_llama()\n')
    for p in (d/'blog').iterdir(): os.utime(p, (OLD, OLD))
    return d

def titles(hs): return hs.attrgot('title')
def folders(hs): return {Path(p).parent.name for p in hs.attrgot('path')}
def search(q, d, **kw): return rank_nbs(q, d, model=None, index=False, **kw)

def test_include_exclude(folder):
    q = 'search the web, plot prices, undo a commit'
    assert folders(search(q, folder)) == {'tools', 'blog'}
    assert folders(search(q, folder, include='*/blog/*')) == {'blog'}
    assert 'Web search' not in titles(search(q, folder, exclude=['web*', 'plots*']))
    assert 'Web search' in titles(search(q, folder, exclude='plots*'))

def test_k_hits_when_k_match(folder):
    # the filter acts before stage 1: the best 2 *blog* notebooks come back, although tools notebooks rank higher unfiltered
    q = 'web search, free a busy port, undo commit, missing prices'
    assert folders(search(q, folder, k=2)) == {'tools'}
    hs = search(q, folder, k=2, include='*/blog/*')
    assert len(hs) == 2 and folders(hs) == {'blog'}

def test_since_before(folder):
    q = 'undo a git commit'
    assert 'Undo a git commit' in titles(search(q, folder, before='2021-01-01'))
    assert folders(search('search the web undo a commit', folder, before='2021-01-01')) == {'blog'}
    assert 'Undo a git commit' not in titles(search(q, folder, since='2021-01-01'))
    with pytest.raises(ValueError, match='`since`'): search(q, folder, since='yesterday')

def test_formats(folder):
    assert titles(search('zebra stripes', folder)) == []  # .md only when asked for
    assert titles(search('zebra stripes', folder, formats=['ipynb', 'md'])) == ['Zebra grooming']
    assert 'Llama shearing' not in titles(search('llama wool', folder, formats=['ipynb', 'md', 'qmd']))  # .py never by default
    assert titles(search('llama wool', folder, formats=['py'])) == ['Llama shearing']
    with pytest.raises(ValueError, match='Unknown notebook formats'): search('x', folder, formats=['docx'])

def nbsearch(*args):
    "The `nbsearch` command in a fresh process: exit status, stdout, stderr"
    code = 'import sys\nfrom nbsearch.cli import nbsearch as f\nsys.argv[0] = "nbsearch"\nsys.exit(f())'
    r = subprocess.run([sys.executable, '-c', code, *map(str, args)], capture_output=True, text=True, timeout=120,
                       env={**os.environ, 'PYTHONPATH': str(REPO), 'HF_HUB_OFFLINE': '1'})
    return r.returncode, r.stdout, r.stderr

def test_cli_help_lists_filters():
    rc,out,err = nbsearch('--help')
    assert rc == 0, err
    for f in ('--include', '--exclude', '--since', '--before', '--formats'): assert f in out

def test_cli_filters(folder):
    rc,out,err = nbsearch('zebra stripes', folder, '--model', 'bm25', '--index', 'memory', '--formats', 'ipynb,md')
    assert rc == 0 and 'Zebra grooming' in out and 'zebra.md [cell' in out, err
    rc,out,err = nbsearch('zebra stripes', folder, '--model', 'bm25', '--index', 'memory')
    assert rc == 0 and 'Zebra grooming' not in out, err
    rc,out,err = nbsearch('search the web, free a busy port, undo a commit', folder, '--model', 'bm25', '--index', 'memory', '--exclude', 'web*,plots*', '--since', '2021-01-01')
    assert rc == 0 and 'Web search' not in out and '/blog/' not in out and '/tools/' in out, err
    rc,out,err = nbsearch('x', folder, '--model', 'bm25', '--since', 'yesterday')
    assert rc == 2 and '`since`' in err and 'Traceback' not in err

def test_mcp_filters(folder, tmp_path):
    pytest.importorskip('mcp.server.mcpserver', reason="needs the MCP SDK: pip install 'nbsearch[mcp]'")
    import anyio
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
    launcher = tmp_path/'nbsearch_mcp_script.py'
    launcher.write_text('import sys\nfrom nbsearch.server import nbsearch_mcp\nif __name__ == "__main__": sys.exit(nbsearch_mcp())\n')
    env = dict(PYTHONPATH=str(REPO), HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', XDG_CACHE_HOME=str(tmp_path/'cache'))
    params = StdioServerParameters(command=sys.executable, args=[str(launcher), '--root', str(folder), '--model', 'bm25'], env=env)
    async def body():
        async with stdio_client(params, errlog=open(tmp_path/'err.txt', 'w')) as (r, w):
            async with ClientSession(r, w) as s:
                await s.initialize()
                q = 'web search, free a busy port, undo commit, missing prices'
                res = [await s.call_tool('search_notebooks', dict(query=q, k=2, filters=f)) for f in
                       (None, {'include': '*/blog/*'}, {'formats': ['ipynb', 'md']})]
                zebra = await s.call_tool('search_notebooks', dict(query='zebra stripes', k=2, filters={'formats': ['ipynb', 'md']}))
                return [o.structured_content['hits'] for o in res], zebra.structured_content['hits']
    (plain, blog, _), zebra = anyio.run(body)
    assert {h['path'].split('/')[-2] for h in plain} == {'tools'}
    assert len(blog) == 2 and {h['path'].split('/')[-2] for h in blog} == {'blog'}
    assert zebra[0]['title'] == 'Zebra grooming' and zebra[0]['path'].endswith('zebra.md')

def test_globs_match_the_end_of_a_path(folder):
    "`tools/*` matches notebooks under a `tools` folder however deep the searched folder is: the form the MCP server shows paths in"
    assert folders(search('port', folder, include='tools/*')) == {'tools'}
    assert 'tools' not in folders(search('port undo commit', folder, exclude='tools/*'))

def test_bad_glob_type(folder):
    with pytest.raises(TypeError, match='include'): search('port', folder, include=5)

def test_folder_without_notebooks_is_named(tmp_path):
    with pytest.warns(UserWarning, match='No notebooks found'): assert len(search('port', tmp_path)) == 0

def test_repr_escapes_file_names(tmp_path):
    "A newline or an escape in a file name cannot split a hit or reach the terminal from `repr`"
    from fastcore.nbio import new_nb, mk_cell, write_nb
    write_nb(new_nb([mk_cell('# Ports', 'markdown'), mk_cell('kill the port')]), tmp_path/'a\nb\x1b[2J.ipynb')
    r = repr(search('port', tmp_path))
    assert '\x1b' not in r and 'a\\nb\\x1b[2J.ipynb [cell' in r and len(r.splitlines()) == 2
    assert '\n' not in repr(search('port', tmp_path)[0])
