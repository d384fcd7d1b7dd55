"""Do two checkouts of nbsearch give the same hits? For a refactoring that must not change any result.

    git worktree add /tmp/base 9c3a5c7
    python bench/same_hits.py ../shared/corpora --baseline /tmp/base --tiny /tmp/tiny-ce

Each checkout runs in a subprocess (`PYTHONPATH` set to it) and searches `folder` with a fresh in-memory index for each query,
with BM25 alone, the packaged all-MiniLM-L6-v2, and a random cross-encoder of TinyBERT-L2's shape (`--tiny`, made there if
missing); then the top 10 hits of each (path, score to 6 digits, cell) are compared.
"""
import os, sys, json, subprocess, tempfile, warnings
from pathlib import Path
from fastcore.script import call_parse

queries = ['run a function over many items in parallel processes', 'strip metadata from notebooks before committing',
           'create a blog with notebooks', 'colored text for terminal output', 'resolve git merge conflicts in notebooks',
           'hide a cell from the rendered documentation']

def _hits(folder, tiny):
    "`{model|query: [(path, score, cell)]}` for this process' nbsearch"
    from nbsearch.core import rank_nbs
    from nbsearch.models import offline_model, load_model, tiny_cross_encoder
    warnings.simplefilter('ignore')
    res = {}
    for name,m in [('bm25', None), ('mini', load_model(offline_model())), ('tiny', load_model(tiny_cross_encoder(tiny)))]:
        for q in queries: res[f'{name}|{q}'] = [(str(h.path), round(h.score, 6), h.cell) for h in rank_nbs(q, folder, m, k=10, index=False, progress=False)]
    return res

@call_parse
def main(
    folder:str, # Notebooks to search
    baseline:str=None, # The other checkout
    tiny:str='/tmp/nbsearch-tiny-ce', # Folder of the tiny cross-encoder (made if missing)
    json_out:str=None, # Internal: where a subprocess writes its hits
):
    "Print how many (model, query) searches give the same top 10 in both checkouts, and the ones that differ"
    if json_out: Path(json_out).write_text(json.dumps(_hits(folder, tiny))); return
    here,got = str(Path(__file__).parent.parent.absolute()),{}
    for b in (baseline, here):
        with tempfile.NamedTemporaryFile(suffix='.json') as f:
            env = {**os.environ, 'PYTHONPATH': str(Path(b).absolute())}
            subprocess.run([sys.executable, __file__, folder, '--tiny', tiny, '--json-out', f.name], check=True, env=env)
            got[b] = json.loads(Path(f.name).read_text())
    a,h = got[baseline],got[here]
    same = [k for k in a if a[k]==h.get(k)]
    print(f'{len(same)} of {len(a)} searches give the same top 10 (path, score to 6 digits, cell)')
    for k in a:
        if a[k]!=h.get(k): print('differs:', k, a[k][:2], h.get(k, [])[:2])
