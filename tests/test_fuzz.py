"""Property-based fuzzing: any JSON at all, written as a notebook, is either read or refused with a clear error; what is
read is cut into passages that fit their window and cover every cell; and the index records the failures it meets."""
import json, warnings, tempfile
from pathlib import Path
from hypothesis import given, settings, strategies, HealthCheck
from nbsearch.read import read_nb, passages, word_offsets, Nb
from nbsearch.index import NbIndex, PassageSetting

scalars = strategies.none() | strategies.booleans() | strategies.integers() | strategies.floats(allow_nan=False) | strategies.text(max_size=30)
anyjson = strategies.recursive(scalars, lambda c: strategies.lists(c, max_size=4) | strategies.dictionaries(strategies.text(max_size=8), c, max_size=4), max_leaves=20)
sources = strategies.text(max_size=300) | strategies.lists(strategies.text(max_size=60), max_size=6) | anyjson
outputs = strategies.lists(strategies.fixed_dictionaries({'output_type': strategies.sampled_from(['stream', 'display_data', 'execute_result', 'error']) | anyjson},
                                         optional={'text': sources, 'data': strategies.dictionaries(strategies.sampled_from(['text/plain', 'image/png', 'text/html']), sources) | anyjson}),
                   max_size=3) | anyjson
cells = strategies.fixed_dictionaries({'cell_type': strategies.sampled_from(['markdown', 'code', 'raw', 'heading', 'mystery']) | anyjson},
                              optional={'source': sources, 'outputs': outputs, 'metadata': anyjson, 'attachments': anyjson, 'level': anyjson})
notebooks = (strategies.fixed_dictionaries({'cells': strategies.lists(cells | anyjson, max_size=8)}, optional={'metadata': anyjson, 'nbformat': anyjson})
             | strategies.fixed_dictionaries({'worksheets': strategies.lists(strategies.fixed_dictionaries({'cells': strategies.lists(cells, max_size=5)}) | anyjson, max_size=2)})
             | anyjson)

tmp = Path(tempfile.mkdtemp(prefix='nbsearch-fuzz-'))

def _write(js):
    p = tmp/'fuzz.ipynb'
    if isinstance(js, bytes): p.write_bytes(js)
    else: p.write_text(json.dumps(js))
    return p

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(notebooks, strategies.booleans(), strategies.integers(8, 64))
def test_read_and_cut(js, outs, n):
    "Reading gives a notebook or a ValueError; its passages fit `n` tokens and cover every cell's text"
    p = _write(js)
    try: nb = read_nb(p, outputs=outs)
    except ValueError: return
    assert isinstance(nb, Nb) and isinstance(nb.title, str)
    assert all(isinstance(c.source, str) and isinstance(c.outputs, str) for c in nb.cells)
    ps = passages(nb, max_tokens=n)
    assert all(len(word_offsets([o.text])[0])<=n for o in ps)
    assert {c.idx for c in nb.cells} == {i for o in ps for i in o.cells}
    covered = ' '.join(' '.join(o.parts) for o in ps)
    for c in nb.cells:
        for a,b in word_offsets([c.text])[0]: assert c.text[a:b] in covered

@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(notebooks | strategies.binary(max_size=200))
def test_index_never_fails(js):
    "The index stores any file's passages or the reason it could not read it, and never raises"
    p = _write(js)
    ix = NbIndex()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        ix.sync([p], PassageSetting(max_tokens=32))
    (err,) = ix.db.execute('select err from docs').fetchone()
    assert (err is None) == (not w)
    if err: assert 'fuzz.ipynb' in str(w[0].message)
