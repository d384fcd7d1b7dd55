"Search filters (paths, dates, notebook formats) on a fixture folder: through `rank_nbs`, the `nbsearch` command and the MCP tool"
import os, re, sys, time, shutil, subprocess
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
    for f in ('--include', '--exclude', '--since', '--before', '--formats', '--cell-type {markdown,code}', '--tag', '--errors'): assert f in out

def test_cli_filters(folder):
    rc,out,err = nbsearch('zebra stripes', folder, '--model', 'bm25', '--index', 'memory', '--formats', 'ipynb,md')
    assert rc == 0 and 'Zebra grooming' in out and re.search(r'zebra\.md:\d+ \[cell', out), err
    rc,out,err = nbsearch('zebra stripes', folder, '--model', 'bm25', '--index', 'memory')
    assert rc == 0 and 'Zebra grooming' not in out, err
    rc,out,err = nbsearch('search the web, free a busy port, undo a commit', folder, '--model', 'bm25', '--index', 'memory', '--exclude', 'web*,plots*', '--since', '2021-01-01')
    assert rc == 0 and 'Web search' not in out and '/blog/' not in out and '/tools/' in out, err
    rc,out,err = nbsearch('x', folder, '--model', 'bm25', '--since', 'yesterday')
    assert rc == 2 and '`--since` must be a date' in err and 'Traceback' not in err

def mcp_session(root, tmp_path, body):
    "`await body(session)` in a session of `nbsearch-mcp --root root --model bm25`, driven by the `mcp` SDK's stdio client"
    pytest.importorskip('mcp.server.mcpserver', reason="needs the MCP SDK: pip install 'nbsearch[mcp]'")
    import anyio
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
    launcher = tmp_path/'nbsearch_mcp_script.py'
    launcher.write_text('import sys\nfrom nbsearch.server import nbsearch_mcp\nif __name__ == "__main__": sys.exit(nbsearch_mcp())\n')
    env = dict(PYTHONPATH=str(REPO), HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', XDG_CACHE_HOME=str(tmp_path/'cache'))
    params = StdioServerParameters(command=sys.executable, args=[str(launcher), '--root', str(root), '--model', 'bm25'], env=env)
    async def run():
        async with stdio_client(params, errlog=open(tmp_path/'err.txt', 'w')) as (r, w):
            async with ClientSession(r, w) as s:
                await s.initialize()
                return await body(s)
    return anyio.run(run)

def test_mcp_filters(folder, tmp_path):
    async def body(s):
        q = 'web search, free a busy port, undo commit, missing prices'
        res = [await s.call_tool('search_notebooks', dict(query=q, k=2, filters=f)) for f in
               (None, {'include': '*/blog/*'}, {'formats': ['ipynb', 'md']})]
        zebra = await s.call_tool('search_notebooks', dict(query='zebra stripes', k=2, filters={'formats': ['ipynb', 'md']}))
        return [o.structured_content['hits'] for o in res], zebra.structured_content['hits']
    (plain, blog, _), zebra = mcp_session(folder, tmp_path, body)
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


# Filters on cells: cell type, tags, errors in outputs. They select passages in stage 1 (`NbIndex.matching`), in SQL.
from fastcore.nbio import new_nb, mk_cell, write_nb

def _err(ename, evalue): return dict(output_type='error', ename=ename, evalue=evalue, traceback=[f'\x1b[31m{ename}\x1b[0m: {evalue}'])
def _out(text, name='stdout'): return dict(output_type='stream', name=name, text=text)

def make_lab(d):
    "Two notebooks with tags and errors: a notebook tagged 'pandas', a markdown cell tagged 'exercise', cells that raised, a cell that only warned on stderr"
    d.mkdir(parents=True, exist_ok=True)
    write_nb(new_nb([mk_cell('# Cleaning sales data\n> Fix the price column before plotting', 'markdown'),
                     mk_cell("df = pd.read_csv('sales.csv')\ndf['price'].mean()", outputs=[_err('KeyError', "'price'")]),
                     mk_cell('## Missing prices\nSome rows have no price: drop them, then take the mean price again.', 'markdown', metadata=dict(tags=['exercise'])),
                     mk_cell("df = df.dropna(subset=['Price'])\ndf['Price'].mean()", outputs=[_out('12.5\n')])], meta=dict(tags=['pandas'])), d/'cleaning.ipynb')
    write_nb(new_nb([mk_cell('# Port in use\n> Why the server would not start on port 8000', 'markdown'),
                     mk_cell('server.start(port=8000)', outputs=[_err('OSError', '[Errno 98] Address already in use')]),
                     mk_cell('## Freeing the port\nKill the process that holds port 8000, then start the server again.', 'markdown'),
                     mk_cell('kill_port(8000)\nserver.start(port=8000)', outputs=[_out('Serving on port 8000\n')]),
                     mk_cell('## Checking it', 'markdown'),
                     mk_cell('server.check(port=8000)', outputs=[_out('UserWarning: port 8000 answers slowly\n', 'stderr')])]), d/'server.ipynb')
    return d

@pytest.fixture
def lab(folder):
    "The `folder` of the other tests, with the two notebooks of `make_lab` in a `lab` subfolder"
    make_lab(folder/'lab')
    return folder

def cells(hs): return [(Path(h.path).name, h.cell) for h in hs]

def test_read_records_errors(lab):
    from nbsearch.read import read_nb
    nb = read_nb(lab/'lab'/'server.ipynb', outputs=True)
    assert [c.error for c in nb.cells] == [False, True, False, False, False, False]  # stderr is not an error
    assert nb.cells[1].outputs == 'OSError: [Errno 98] Address already in use'
    assert read_nb(lab/'lab'/'server.ipynb').cells[1].error  # recorded whether or not outputs are read

def test_cell_type(lab):
    q = 'kill the process that holds port 8000'
    hs = search(q, lab, cell_type='code')
    assert hs and all(_type(h) == 'code' for h in hs)
    hs = search(q, lab, cell_type='markdown')
    assert hs and all(_type(h) == 'markdown' for h in hs)
    assert ('server.ipynb', 2) in cells(hs)
    with pytest.raises(ValueError, match=r"`cell_type` must be one of \['markdown', 'code'\]"): search(q, lab, cell_type='cod')

def _type(h):
    import json
    return json.loads(Path(h.path).read_text())['cells'][h.cell]['cell_type']

def test_tags(lab):
    q = 'mean price'
    assert cells(search(q, lab, tags='exercise')) == [('cleaning.ipynb', 2)]  # a cell's tag: that cell
    assert titles(search(q, lab, tags=['pandas'])) == ['Cleaning sales data']  # a notebook's tag: any of its cells
    assert titles(search(q, lab, tags=['nowhere', 'pandas'])) == ['Cleaning sales data']  # any of the tags
    assert titles(search(q, lab, tags=['Pandas'])) == []  # exactly: tags are case-sensitive
    assert cells(search(q, lab, tags='pandas', cell_type='markdown')) == [('cleaning.ipynb', 2)]  # filters combine with and
    with pytest.raises(TypeError, match='`tags`'): search(q, lab, tags=5)

def test_errors(lab):
    q = 'port 8000 price'
    hs = search(q, lab, errors=True)  # turns outputs on
    assert sorted(cells(hs)) == [('cleaning.ipynb', 1), ('server.ipynb', 1)]
    assert cells(search('answers slowly', lab, outputs=True)) == [('server.ipynb', 5)]
    assert search('answers slowly', lab, errors=True) == []  # a warning on stderr is not an error
    assert cells(search('address already in use', lab, errors=True)) == [('server.ipynb', 1)]  # the error's message is searched
    assert search(q, lab, errors=True, cell_type='markdown') == []
    with pytest.raises(TypeError, match='`errors`'): search(q, lab, errors='yes')

def test_cell_filters_k_hits_when_k_match(lab):
    # the filter acts in stage 1: the best 2 notebooks *with errors* come back, although others rank higher unfiltered
    q = 'free a busy port, undo a commit, clean prices, plot'
    assert cells(search(q, lab, k=2, outputs=True)) == [('ports.ipynb', 0), ('cleaning.ipynb', 0)]
    assert cells(search(q, lab, k=2, errors=True)) == [('cleaning.ipynb', 1), ('server.ipynb', 1)]
    assert cells(search(q, lab, k=2, cell_type='code', include='*/blog/*')) == [('git_undo.ipynb', 2), ('pandas_cleaning.ipynb', 3)]

def test_cell_filters_dense_leg(lab):
    "The dense leg (a toy bag-of-words bi-encoder here) returns only passages the filters let through"
    import numpy as np, hashlib
    from nbsearch.index import NbIndex
    from nbsearch.search import candidates, setting_for, passage_filter
    from nbsearch.read import get_nb_paths, word_offsets
    class Toy:
        kind,name,key,max_seq_length,tok_key = 'bi','toy','toy-1',512,'words'
        def offsets(self, texts): return word_offsets(texts)
        def embed(self, texts):
            v = np.zeros((len(texts), 64), 'float32')
            for i,t in enumerate(texts):
                for w in t.lower().split(): v[i, int(hashlib.md5(w.encode()).hexdigest(), 16)%64] += 1
            return v/np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)
    toy,ix = Toy(),NbIndex()
    setting = setting_for(toy, outputs=True)
    rp = ix.sync(get_nb_paths(lab), setting)
    cs = candidates('zzz unseen words only', ix, setting, rp, dense=toy, filters=passage_filter(errors=True))  # no word in common: the dense leg alone
    assert cs and all(c.lex_rank is None for c in cs)
    assert {(Path(c.path).name, c.cells[i]) for c in cs for i in c.ok} == {('cleaning.ipynb', 1), ('server.ipynb', 1)}
    assert len(candidates('zzz', ix, setting, rp, dense=toy)) > len(cs)

def test_cell_filters_same_whatever_the_index_holds(lab, tmp_path):
    "Same query, folder and filters: the same hits and scores, in a fresh index or in one that holds other folders"
    other = tmp_path/'other'; make_lab(other/'more'); shutil.copytree(CORPUS, other/'corpus')
    (other/'more'/'cleaning.ipynb').write_text((other/'more'/'cleaning.ipynb').read_text().replace('price', 'price price cost'))
    db = tmp_path/'shared.db'
    rank_nbs('mean price port', other, model=None, index=db, outputs=True)
    for kw in (dict(cell_type='markdown'), dict(tags='pandas'), dict(errors=True), dict(cell_type='code', tags=['exercise', 'pandas'])):
        fresh = rank_nbs('mean price port 8000', lab/'lab', model=None, index=False, **kw)
        shared = rank_nbs('mean price port 8000', lab/'lab', model=None, index=db, **kw)
        assert fresh and [(h.path, h.cell, h.score) for h in fresh] == [(h.path, h.cell, h.score) for h in shared], kw

def test_cell_filters_keep_bm25_scores(lab):
    "A filter leaves out passages, never rescores the others: BM25's statistics stay those of the notebooks searched"
    from nbsearch.index import NbIndex, PassageSetting
    from nbsearch.read import get_nb_paths
    ix,setting = NbIndex(),PassageSetting(outputs=True)
    rp = ix.sync(get_nb_paths(lab), setting)
    q = 'kill the process on port 8000, mean price'
    every = {h.id: h.score for h in ix.lexical(q, setting, rp)}
    for kw in (dict(cell_type='code'), dict(errors=True), dict(tags=['pandas'])):
        only = ix.matching(setting, rp, **kw)
        some = ix.lexical(q, setting, rp, only=only)
        assert some and {h.id: h.score for h in some} == {i: s for i,s in every.items() if i in set(only.tolist())}

def test_cli_cell_filters(lab):
    base = ('--model', 'bm25', '--index', 'memory', '--json')
    rc,out,err = nbsearch('mean price, port 8000', lab, *base, '--errors')
    assert rc == 0, err
    import json
    assert sorted((Path(h['path']).name, h['cell']) for h in json.loads(out)) == [('cleaning.ipynb', 1), ('server.ipynb', 1)]
    rc,out,err = nbsearch('mean price', lab, *base, '--tag', 'nowhere', '--tag', 'exercise')
    assert rc == 0 and [(Path(h['path']).name, h['cell']) for h in json.loads(out)] == [('cleaning.ipynb', 2)], err
    rc,out,err = nbsearch('kill the process on port 8000', lab, *base, '--cell-type', 'markdown')
    assert rc == 0 and json.loads(out) and all(h['cell'] in (0, 2) for h in json.loads(out) if h['path'].endswith('server.ipynb')), err
    rc,out,err = nbsearch('x', lab, '--model', 'bm25', '--cell-type', 'cod')
    assert rc == 2 and "--cell-type: invalid choice: 'cod'" in err and 'Traceback' not in err
    rc,out,err = nbsearch('x', lab, '--model', 'bm25', '--tag', ' ')
    assert rc == 2 and "`--tag` needs a tag name" in err and 'Traceback' not in err

def test_mcp_cell_filters(lab, tmp_path):
    async def body(s):
        fs = ({'errors': True}, {'tags': ['exercise']}, {'cell_type': 'code', 'tags': 'pandas'})
        res = [await s.call_tool('search_notebooks', dict(query='mean price, port 8000', k=5, filters=f)) for f in fs]
        bad = [await s.call_tool('search_notebooks', dict(query='mean price', filters=f)) for f in ({'cell_type': 'cod'}, {'tags': 3}, {'errors': 'yes'})]
        return [[(h['path'].split('/')[-1], h['cell']) for h in o.structured_content['hits']] for o in res], bad
    (errs, tagged, code), (bad, badtag, baderr) = mcp_session(lab, tmp_path, body)
    assert badtag.is_error and '`tags` must be a tag or a list of tags' in badtag.content[0].text  # a wrong type is a clear tool error too
    assert baderr.is_error and '`errors` must be True or False' in baderr.content[0].text
    assert sorted(errs) == [('cleaning.ipynb', 1), ('server.ipynb', 1)]
    assert tagged == [('cleaning.ipynb', 2)]
    assert code and all(n == 'cleaning.ipynb' and c in (1, 3) for n,c in code)
    assert bad.is_error and '`cell_type` must be one of' in bad.content[0].text

def test_cell_filters_cross_encoder(lab, tmp_path):
    "A cross-encoder reads every passage of a small folder (`all_below`): with a filter, every passage that passes, and no other"
    from nbsearch.models import tiny_cross_encoder, load_model
    tiny = load_model(tiny_cross_encoder(tmp_path/'tiny'))
    for kw,ok in ((dict(errors=True), {('cleaning.ipynb', 1), ('server.ipynb', 1)}), (dict(tags='exercise'), {('cleaning.ipynb', 2)})):
        hs = rank_nbs('zzz', lab/'lab', model=tiny, index=False, **kw)  # no word in common: found by the filter alone
        assert set(cells(hs)) == ok, kw
    assert {_type(h) for h in rank_nbs('port', lab, model=tiny, index=False, cell_type='markdown')} == {'markdown'}

def test_more_than_n_nbs_hits_with_a_model(tmp_path):
    "`k` above `n_nbs` (30): stage 1 keeps `k` notebooks, so a model-ranked search still returns `k` hits when `k` match"
    from nbsearch.models import tiny_cross_encoder, load_model
    src = REPO/'tests'/'corpus'/'tools'/'ports.ipynb'
    for i in range(40): shutil.copyfile(src, tmp_path/f'ports{i:02}.ipynb')
    tiny = load_model(tiny_cross_encoder(tmp_path/'tiny'))
    assert len(rank_nbs('free a busy port', tmp_path, model=tiny, index=False, k=40)) == 40
    assert len(rank_nbs('free a busy port', tmp_path, model=tiny, index=False, k=35, n_nbs=10)) == 35
