"End-to-end tests of `nbsearch-mcp`, driven by the `mcp` SDK's own stdio client, offline"
import os, sys, json, time
from pathlib import Path
import pytest

pytest.importorskip('mcp.server.mcpserver', reason="needs the MCP SDK: pip install 'nbsearch[mcp]'")
import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO/'tests'/'corpus'

@pytest.fixture
def launcher(tmp_path):
    "A script that runs `nbsearch_mcp` the way the `nbsearch-mcp` console script does, from this checkout"
    p = tmp_path/'nbsearch_mcp_script.py'
    p.write_text('import sys\nfrom nbsearch.server import nbsearch_mcp\nif __name__ == "__main__": sys.exit(nbsearch_mcp())\n')
    return p

def _params(launcher, tmp_path, *args):
    env = dict(PYTHONPATH=str(REPO), HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', TOKENIZERS_PARALLELISM='false',
               XDG_CACHE_HOME=str(tmp_path/'cache'))
    return StdioServerParameters(command=sys.executable, args=[str(launcher), *args], env=env)

async def _session(params, body, errlog):
    async with stdio_client(params, errlog=errlog) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            return await body(s)

def _run(params, body, tmp_path):
    "Run `body(session)` against a server started with `params`; its result, and what the server wrote on stderr"
    with open(tmp_path/'stderr.txt', 'w+') as err:
        res = anyio.run(_session, params, body, err)
        err.seek(0); return res, err.read()

def _text(r): return r.content[0].text if r.content else ''

def test_bm25_end_to_end(launcher, tmp_path):
    # a second folder holds a link to a notebook outside the served folders: it must not be served
    other = tmp_path/'other'; other.mkdir()
    (other/'secret.ipynb').write_text((CORPUS/'tools'/'ports.ipynb').read_text())
    served = tmp_path/'served'; served.mkdir()
    (served/'notes.ipynb').symlink_to(other/'secret.ipynb')
    (served/'notes.txt').write_text('not a notebook'); (served/'broken.ipynb').write_text('{"cells": [')
    params = _params(launcher, tmp_path, '--root', str(CORPUS), '--root', str(served), '--model', 'bm25')
    async def body(s):
        tools = {t.name: t for t in (await s.list_tools()).tools}
        q = 'how do I kill the process listening on port 8000?'
        t0 = time.perf_counter(); first = await s.call_tool('search_notebooks', dict(query=q, k=3)); t1 = time.perf_counter()
        second = await s.call_tool('search_notebooks', dict(query='undo the last git commit', k=3)); t2 = time.perf_counter()
        best = first.structured_content['hits'][0]
        cell = await s.call_tool('read_cell', dict(path=best['path'], cell=best['cell'], outputs=True))
        outline = await s.call_tool('notebook_outline', dict(path=best['path']))
        refusals = [await s.call_tool('read_cell', dict(path=p, cell=0)) for p in
                    ('/etc/passwd', '../../../../etc/passwd', 'corpus/../../../etc/passwd', 'served/notes.ipynb', str(other/'secret.ipynb'))]
        bad = [await s.call_tool('read_cell', dict(path=best['path'], cell='two')),
               await s.call_tool('read_cell', dict(path=best['path'], cell=999)),
               await s.call_tool('notebook_outline', dict(path='corpus/tools')),
               await s.call_tool('notebook_outline', dict(path='corpus/nope.ipynb')),
               await s.call_tool('search_notebooks', dict(query='', k=3)),
               await s.call_tool('search_notebooks', dict(query='x', k=3, filters={'no_such_filter': 1})),
               await s.call_tool('read_cell', dict(path='served/notes.txt', cell=0)),
               await s.call_tool('read_cell', dict(path='served/broken.ipynb', cell=0)),
               await s.call_tool('no_such_tool', {})]
        after = await s.call_tool('search_notebooks', dict(query='sourdough starter', k=1))
        return tools, first, second, cell, outline, refusals, bad, after, (t1-t0, t2-t1)
    (tools, first, second, cell, outline, refusals, bad, after, (t_first, t_warm)), err = _run(params, body, tmp_path)

    assert sorted(tools) == ['notebook_outline', 'read_cell', 'search_notebooks']
    assert tools['search_notebooks'].input_schema['required'] == ['query']
    assert tools['read_cell'].output_schema is not None
    hits = first.structured_content['hits']
    assert not first.is_error and hits[0]['path'] == 'corpus/tools/ports.ipynb', hits
    ids = [c.get('id') for c in json.loads((CORPUS/'tools'/'ports.ipynb').read_text())['cells']]
    assert hits[0]['cell_id'] == ids[hits[0]['cell']]
    assert hits[0]['link'].endswith(f"#cell-id={hits[0]['cell_id']}") and hits[0]['link'].startswith('file://')
    assert all(len(h['snippet']) <= 300 for h in hits)
    assert all('secret' not in h['path'] and not h['path'].startswith('served/') for h in hits)  # the link leading out is not searched
    assert second.structured_content['hits'][0]['title'] == 'Undo a git commit'
    c = cell.structured_content
    assert not cell.is_error and c['title'] == 'Free a busy port' and c['cell_id'] == hits[0]['cell_id'] and c['source']
    assert [h['text'] for h in outline.structured_content['headings']] == ['Free a busy port', 'From Python']
    for r in refusals: assert r.is_error and 'outside the folders' in _text(r), _text(r)
    assert all(r.is_error for r in bad), [_text(r) for r in bad]
    assert 'has 5 cells' in _text(bad[1]) and 'is a folder' in _text(bad[2]) and 'No such file' in _text(bad[3])
    assert 'Unknown filter' in _text(bad[5]) and 'Not a notebook' in _text(bad[6]) and 'Expecting' in _text(bad[7])
    assert not after.is_error and after.structured_content['hits'][0]['title'] == 'Baking sourdough bread'  # still serving
    assert 'ready in' in err and 'model bm25' in err
    print(f'\nBM25, {len(ids)}-cell corpus of 6 notebooks: first search {t_first*1000:.0f} ms, warm search {t_warm*1000:.0f} ms')
    assert t_warm < 2

def test_bad_start(launcher, tmp_path):
    "A missing folder or no folder stops the server at once with a message on stderr, exit status 2, nothing on stdout"
    import subprocess
    env = {**os.environ, 'PYTHONPATH': str(REPO), 'HF_HUB_OFFLINE': '1', 'XDG_CACHE_HOME': str(tmp_path/'cache')}
    for args,msg in [(['--root', str(tmp_path/'nope'), '--model', 'bm25'], 'Not a folder'), ([], 'at least one folder')]:
        r = subprocess.run([sys.executable, str(launcher), *args], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=60)
        assert (r.returncode, r.stdout) == (2, '') and msg in r.stderr, r

@pytest.mark.slow
def test_minilm_warm(launcher, tmp_path):
    "With the packaged all-MiniLM-L6-v2 bi-encoder: the model is loaded and the corpus embedded once, at start"
    from nbsearch.models import offline_model
    if not (m := offline_model()): pytest.skip('needs nbsearch[offline]')
    params = _params(launcher, tmp_path, '--root', str(CORPUS), '--model', m)
    async def body(s):
        ts,res = [],[]
        for q in ('free a TCP port held by a crashed server', 'bread with a long rise', 'plot a histogram'):
            t = time.perf_counter(); res.append(await s.call_tool('search_notebooks', dict(query=q, k=2))); ts.append(time.perf_counter()-t)
        return res, ts
    (res, ts), err = _run(params, body, tmp_path)
    import subprocess
    t = time.perf_counter()  # baseline: the same search from the one-shot command, which loads the model each time
    (cl := tmp_path/'nbsearch_script.py').write_text('import sys\nfrom nbsearch.cli import nbsearch\nif __name__ == "__main__": sys.exit(nbsearch())\n')
    cli = subprocess.run([sys.executable, str(cl), 'free a TCP port held by a crashed server', str(CORPUS), '--model', m],
                         capture_output=True, text=True, env=params.env | {'PATH': os.environ['PATH']}, timeout=300)
    t_cli = time.perf_counter()-t
    assert cli.returncode in (0, None) and 'Free a busy port' in cli.stdout, cli
    assert [r.structured_content['hits'][0]['title'] for r in res] == ['Free a busy port', 'Baking sourdough bread', 'Plotting with matplotlib']
    assert 'all-MiniLM-L6-v2' in res[0].structured_content['model'] or 'minilm' in res[0].structured_content['model'].lower()
    print(f'\nall-MiniLM-L6-v2: warm searches {", ".join(f"{t*1000:.0f} ms" for t in ts)}; the same search by a one-shot process '
          f'{t_cli:.1f} s ({t_cli/ts[0]:.0f}x the first warm call); start-up: {err.strip().splitlines()[-1]}')
    assert max(ts) < 5
