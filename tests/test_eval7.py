"Fixes from a hostile review (eval7): `evaluate` resolves models as `rank_nbs` does, leaves out queries without a relevant judgment, takes one notebook, checks every query up front; CLI refuses empty `--index`/`--include`/`--exclude`"
import os, sys, json, subprocess, warnings
from pathlib import Path
import pytest
from test_cli6 import run, one_error, _entry, heavy
import nbsearch.evaluate as ev_mod, nbsearch.search as search_mod
from nbsearch.evaluate import evaluate, read_qrels
from nbsearch.core import compare_models
from nbsearch.models import pick_model, model_name

corpus = Path(__file__).parent/'corpus'
_entry.setdefault('nbsearch-index', 'nbsearch_index')
Q = {'kill the process on port 8000': {'tools/ports': 2}, 'search the web from python': {'tools/web_search': 2}}

# 1. Every model spelling `rank_nbs` takes, resolved as it resolves them, loaded once

@pytest.mark.parametrize('model', ['bm25', 'BM25', None])
def test_evaluate_bm25_spellings(model):
    e = evaluate(Q, corpus, model=model, index=False)
    assert (e.name, e.mean['ndcg@10']) == ('BM25', evaluate(Q, corpus, model=None, index=False).mean['ndcg@10'])

def test_evaluate_default_model(monkeypatch):
    "'default' and the default argument are the model `rank_nbs` would search with (its offline fallback included), picked once per evaluation: `rank_nbs` is given the loaded model"
    want = model_name(pick_model(None, quiet=True))
    calls = []
    orig = search_mod.pick_model
    monkeypatch.setattr(search_mod, 'pick_model', lambda *a, **kw: calls.append(a) or orig(*a, **kw))
    assert evaluate(Q, corpus, model='default', index=False, progress=False).name == want
    with pytest.raises(ValueError, match='empty string'): evaluate(Q, corpus, model='', index=False)  # as `rank_nbs` and the CLI refuse it
    assert evaluate(Q, corpus, index=False, progress=False).name == want
    assert len(calls) == 2, 'one resolution per evaluation: rank_nbs must get the model `evaluate` loaded, not resolve it per query'

def test_compare_models_default():
    c = compare_models(None, ['default', 'bm25'], corpus, qrels=Q, index=False, progress=False)
    assert c.names == [model_name(pick_model(None, quiet=True)), 'BM25']

def test_evaluate_bm25_imports_no_torch():
    code = (f"import sys\nfrom nbsearch.evaluate import evaluate\ne = evaluate({Q!r}, {str(corpus)!r}, model='bm25', index=False)\n"
            f"print(e.name, [m for m in {heavy!r} if m in sys.modules])")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert r.stdout.split('\n')[0] == 'BM25 []', (r.stdout, r.stderr)

# 2. Queries without a relevant judgment are left out, with one warning; a query with no searchable words is a miss

def test_unjudged_queries_left_out():
    qs = {'web search': {'tools/web_search': 2}, 'kill the process on port 8000': {}, 'sourdough': {'blog/sourdough': 0}}
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        e = evaluate(qs, corpus, model=None, index=False)
    assert [r['query'] for r in e.rows] == ['web search'] and e.mean['ndcg@10'] == 1.
    msgs = [str(o.message) for o in w]
    assert len(msgs) == 1 and '2 of 3 queries left out of the mean, as they have no relevant judgment' in msgs[0] and "'sourdough'" in msgs[0], msgs

def test_no_relevant_judgment_at_all():
    with pytest.raises(ValueError, match='No query has a relevant judgment'):
        evaluate({'a': {}, 'b': {'tools/ports': 0}}, corpus, model=None, index=False)

def test_eval_cli_unjudged(tmp_path):
    (q := tmp_path/'q.json').write_text(json.dumps({'web search': {'tools/web_search': 2}, 'kill the process on port 8000': {}, 'sourdough': {'blog/sourdough': 0}}))
    rc,out,err,hv = run(q, corpus, '--model', 'bm25', '--index', 'memory', cmd='nbsearch-eval')
    assert rc == 0 and out.splitlines()[1].split()[:4] == ['BM25', '1.000', '1.000', '1.000'], (out, err)
    assert len(err.splitlines()) == 1 and 'left out of the mean' in err and hv == [], err

def test_query_without_words_is_a_miss(tmp_path):
    "'?!' has nothing to search for: a real query the search fails, scored 0, not left out, and no crash (even first, where the warm-up runs)"
    e = evaluate({'?!': {'tools/ports': 2}, 'web search': {'tools/web_search': 2}}, corpus, model=None, index=False)
    assert [(r['query'], r['ndcg@10']) for r in e.rows] == [('?!', 0.), ('web search', 1.)]

# 3. One notebook as the path; every query checked before any runs

def test_eval_one_notebook(tmp_path):
    "Ids are relative to the notebook's folder, as a folder's are relative to it"
    (q := tmp_path/'q.json').write_text(json.dumps({'kill the process on port 8000': {'ports': 2}}))
    rc,out,err,hv = run(q, corpus/'tools'/'ports.ipynb', '--model', 'bm25', '--index', 'memory', cmd='nbsearch-eval')
    assert rc == 0 and out.splitlines()[1].split()[:2] == ['BM25', '1.000'], (out, err)
    (q2 := tmp_path/'q2.json').write_text(json.dumps({'kill the process on port 8000': {'tools/ports': 2}}))
    one_error(run(q2, corpus/'tools'/'ports.ipynb', '--model', 'bm25', '--index', 'memory', cmd='nbsearch-eval'),
              f"no judged id names a notebook under '{corpus/'tools'}'")

def test_evaluate_one_notebook():
    e = evaluate({'kill the process on port 8000': {'ports': 2}}, corpus/'tools'/'ports.ipynb', model=None, index=False)
    assert e.rows[0]['ndcg@10'] == 1.

def test_long_query_checked_up_front(monkeypatch, tmp_path):
    long = 'port '*500
    calls = []
    monkeypatch.setattr(ev_mod, 'rank_nbs', lambda *a, **kw: calls.append(a))
    with pytest.raises(ValueError, match="Judged query 'port port"):
        evaluate({'web search': {'tools/web_search': 2}, long: {'tools/ports': 2}}, corpus, model=None, index=False)
    assert calls == []
    (f := tmp_path/'q14.json').write_text(json.dumps({'web search': {'tools/web_search': 2}, long: {'tools/ports': 2}}))
    with pytest.raises(ValueError, match='q14.json'): read_qrels(f)
    one_error(run(f, corpus, '--model', 'bm25', '--index', 'memory', cmd='nbsearch-eval'), "q14.json': Judged query 'port port port port port port port port…' is refused: The query is 2,500 characters long")

@pytest.mark.parametrize('q', ['', '   '])
def test_blank_query_checked_up_front(q):
    with pytest.raises(ValueError, match='non-empty'): read_qrels({'web search': {'tools/web_search': 2}, q: {'tools/ports': 2}})

# 4. CLI arguments

@pytest.mark.parametrize('cmd,args', [('nbsearch', ['web', corpus, '--model', 'bm25']), ('nbsearch-eval', ['QRELS', corpus, '--model', 'bm25']),
                                      ('nbsearch-index', ['info'])])
def test_empty_index(tmp_path, cmd, args):
    "`--index ''` would silently be the default index"
    (q := tmp_path/'q.json').write_text(json.dumps(Q))
    one_error(run(*[q if a=='QRELS' else a for a in args], '--index', '', cmd=cmd), '`--index` needs')

@pytest.mark.parametrize('opt', ['--include', '--exclude'])
@pytest.mark.parametrize('val', ['', ','])
def test_empty_globs(opt, val):
    one_error(run('web', corpus, '--model', 'bm25', '--index', 'memory', opt, val), f'`{opt}` needs')

def test_index_info_memory():
    rc,out,err,hv = run('info', '--index', 'memory', cmd='nbsearch-index')
    assert rc == 0 and 'memory keeps no index' in out and 'No index at' not in out, (out, err)
