"Fixes from a hostile review: judgments' grades and folders, 'bm25' in `compare_models`, a hit's line found cheaply, and clearer argument errors"
import os, sys, json, subprocess
from pathlib import Path
import pytest
from nbsearch.read import cell_id_line, cell_starts
from nbsearch.server import cell_line
from nbsearch.search import Hit
from nbsearch.cli import fmt_hits, _line

corpus = Path(__file__).parent/'corpus'
heavy = ('torch', 'transformers', 'sentence_transformers')
_entry = {'nbsearch': 'nbsearch', 'nbsearch-eval': 'nbsearch_eval'}

def run(*args, cmd='nbsearch'):
    "Run command `cmd` with `args` in a fresh process: exit status, stdout, stderr, and the heavy modules it imported"
    code = (f"import sys, atexit\natexit.register(lambda: print('HEAVY=' + ','.join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr))\n"
            f"from nbsearch.cli import {_entry[cmd]} as f\nsys.argv[0] = {cmd!r}\nsys.exit(f())")
    r = subprocess.run([sys.executable, '-c', code, *map(str, args)], capture_output=True, text=True, timeout=300,
                       env={**os.environ, 'HF_HUB_OFFLINE': '1'})
    lines = r.stderr.splitlines()
    assert lines and lines[-1].startswith('HEAVY='), r.stderr
    return r.returncode, r.stdout, '\n'.join(lines[:-1]), [m for m in lines[-1][6:].split(',') if m]

def one_error(res, contains):
    "Exit status 2, one line on stderr holding `contains`, and no torch imported to say it"
    rc,out,err,hv = res
    assert (rc, len(err.splitlines()), hv) == (2, 1, []), (rc, err, hv)
    assert err.startswith('nbsearch: error:') and contains in err, err

def nb(path, cells, minor=5):
    "Write notebook `path` of `cells` (`(cell_type, source, tags)`), with cell ids when nbformat_minor>=5"
    cs = [dict(cell_type=t, metadata=dict(tags=list(tags)) if tags else {}, source=s, **({'id': f'c{i}'} if minor>=5 else {}),
               **(dict(outputs=[], execution_count=None) if t=='code' else {})) for i,(t,s,tags) in enumerate(cells)]
    Path(path).write_text(json.dumps(dict(cells=cs, metadata={}, nbformat=4, nbformat_minor=minor), indent=1))
    return Path(path)

def _id_at(p, cid): return next(i for i,l in enumerate(Path(p).read_text().splitlines(), 1) if l.strip().startswith(f'"id": "{cid}"'))

# 1. Grades and folders of judgments

@pytest.mark.parametrize('grade,shown', [('-2', 'not -2'), ('1e309', 'not inf'), ('NaN', 'not nan'), ('101', 'not 101')])
def test_eval_bad_grade(tmp_path, grade, shown):
    "A negative, infinite, NaN or huge grade is one error naming the query and the notebook id, before any model loads"
    (q := tmp_path/'q.json').write_text('{"kill port": {"tools/ports": %s}}' % grade)
    one_error(run(q, corpus, '--model', 'bm25', cmd='nbsearch-eval'), f"The grade of 'tools/ports' for query 'kill port' must be a finite number from 0 to 100, {shown}")

@pytest.mark.parametrize('qrels,folder', [({'kill port': {'tols/ports': 2}, 'undo': {'blog/git_undo.ipynb': 1}}, corpus),
                                          ({'kill port': {'tools/ports': 2}}, corpus/'blog')])
def test_eval_nothing_judged(tmp_path, qrels, folder):
    "No judged id names a searched notebook (typos, or the wrong folder): an error, not a row of NaN with status 0"
    (q := tmp_path/'q.json').write_text(json.dumps(qrels))
    one_error(run(q, folder, '--model', 'bm25', cmd='nbsearch-eval'), 'No query has a judged notebook in the searched folders')

def test_eval_good_still_works(tmp_path):
    (q := tmp_path/'q.json').write_text(json.dumps({'kill the process on port 8000': {'tools/ports': 2, 'blog/git_undo': 0}}))
    rc,out,err,hv = run(q, corpus, '--model', 'bm25', '--index', 'memory', cmd='nbsearch-eval')
    assert rc==0 and out.splitlines()[1].split()[:3]==['BM25', '1.000', '1.000'], (out, err)

# 2. 'bm25' in compare_models

def test_compare_models_bm25_by_name():
    "The README's example: 'bm25' beside a neural model, as `rank_nbs` accepts it"
    from nbsearch.core import compare_models
    from nbsearch.models import offline_model
    if not offline_model(): pytest.skip('no offline model')
    c = compare_models('kill port', ['bm25', offline_model()], corpus, k=2, index=False)
    assert c.names == ['BM25', 'all-MiniLM-L6-v2']
    assert c.hits[0][0].title == 'Free a busy port'

# 3. The line of a hit, found cheaply and the same as before

def test_line_same_as_cell_line():
    "For every cell of every notebook of the corpus, the line by id is the line `cell_line` finds by parsing the notebook"
    n = 0
    for p in corpus.rglob('*.ipynb'):
        for i,c in enumerate(json.loads(p.read_text())['cells']):
            assert cell_id_line(p, c['id']) == cell_line(p, i) == _line(Hit(p, 1., 't', i, 's', c['id'])), (p, i)
            n += 1
    assert n > 20

def test_text_output_lines(tmp_path):
    "The command's `path:LINE [cell N]` for a search of the corpus is the line of each hit's cell `\"id\"`"
    rc,out,err,hv = run('kill the process on port 8000', corpus, '--model', 'bm25', '--index', 'memory', '-k', '3')
    js = json.loads(run('kill the process on port 8000', corpus, '--model', 'bm25', '--index', 'memory', '-k', '3', '--json')[1])
    where = [l.split()[-3] for l in out.splitlines()[::2]]
    assert rc==0 and where == [f"{h['path']}:{cell_line(h['path'], h['cell'])}" for h in js], (out, err)

def test_line_no_ids_and_text_notebooks(tmp_path):
    "A notebook with no cell ids (nbformat 4.4) still gets the line of its `cell_type`, a text notebook the line its cell starts on"
    old = nb(tmp_path/'old.ipynb', [('markdown', '# Old', ()), ('code', 'kill(8000)', ())], minor=4)
    ln = _line(Hit(old, 1., 't', 1, 's'))
    assert old.read_text().splitlines()[ln-1].strip() == '"cell_type": "code",'
    (md := tmp_path/'ports.md').write_text('# Ports\n\nFree a port.\n\n```python\nkill(8000)\n```\n')
    assert _line(Hit(md, 1., 't', 1, 's')) == cell_starts(md)[1] == 6

def test_line_reads_no_further_than_the_cell(tmp_path):
    "The line is found without parsing the notebook: a file whose tail is not JSON at all still gives it"
    p = nb(tmp_path/'a.ipynb', [('markdown', '# A', ()), ('code', 'kill(8000)', ())])
    good = _line(Hit(p, 1., 't', 1, 's', 'c1'))
    p.write_text(p.read_text() + '\x00 not json {{{' * 1000)
    assert _line(Hit(p, 1., 't', 1, 's', 'c1')) == good == _id_at(p, 'c1')

def test_line_missing_when_changed_or_too_big(tmp_path, monkeypatch):
    "A cell gone since indexing, or a notebook over `max_nb_bytes`, just has no line: `path [cell N]`"
    import nbsearch.read as rd
    p = nb(tmp_path/'a.ipynb', [('markdown', '# A', ()), ('code', 'kill(8000)', ())])
    assert fmt_hits([Hit(p, 1., 'A', 1, 'kill', 'gone')], 'kill').splitlines()[0].endswith(f'{p} [cell 1]')
    assert fmt_hits([Hit(p, 1., 'A', 1, 'kill', 'c1')], 'kill').splitlines()[0].endswith(f'{p}:{_id_at(p, "c1")} [cell 1]')
    monkeypatch.setattr(rd, 'max_nb_bytes', 100)
    assert fmt_hits([Hit(p, 1., 'A', 1, 'kill', 'c1')], 'kill').splitlines()[0].endswith(f'{p} [cell 1]')

# 4. Argument errors

def test_no_notebooks_in_folder(tmp_path):
    "A folder with no notebooks says so, naming the folder, in both commands"
    (q := tmp_path/'q.json').write_text('{"q": {"a": 1}}')
    (d := tmp_path/'empty').mkdir()
    one_error(run('port', d, '--model', 'bm25'), f"no notebooks found in '{d}'")
    one_error(run(q, d, '--model', 'bm25', cmd='nbsearch-eval'), f"no notebooks found in '{d}'")
    one_error(run('port', corpus, '--model', 'bm25', '--formats', 'md'), f"no notebooks found in '{corpus}' (formats: md)")

@pytest.mark.parametrize('args,contains', [(['--model', ''], "`--model` needs a model name"), (['--model', ' '], "`--model` needs a model name"),
                                           (['--formats', ''], "`--formats` needs one or more of ipynb, md, qmd, py"),
                                           (['--formats', ','], "not ','"), (['--tag', ','], "`--tag` needs a tag name, not ','")])
def test_empty_arguments(args, contains):
    "An empty `--model`, `--formats` or `--tag` is refused, not read as the default"
    one_error(run('port', corpus, *args), contains)

def test_eval_empty_model(tmp_path):
    (q := tmp_path/'q.json').write_text(json.dumps({'kill port': {'tools/ports': 2}}))
    one_error(run(q, corpus, '--model', 'bm25', '--model', '', cmd='nbsearch-eval'), '`--model` needs a model name')

def test_tag_splits_on_commas(tmp_path):
    "`--tag a,b` is `--tag a --tag b`: cells with either tag"
    nb(tmp_path/'a.ipynb', [('markdown', '# Alpha ports', ()), ('code', 'kill_port(8000)', ('alpha',))])
    nb(tmp_path/'b.ipynb', [('markdown', '# Beta ports', ()), ('code', 'kill_port(9000)', ('beta',))])
    nb(tmp_path/'c.ipynb', [('markdown', '# Gamma ports', ()), ('code', 'kill_port(7000)', ('gamma',))])
    s = lambda *a: sorted(Path(h['path']).name for h in json.loads(run('kill port', tmp_path, '--model', 'bm25', '--index', 'memory', '--json', *a)[1]))
    assert s('--tag', 'alpha,beta') == s('--tag', 'alpha', '--tag', 'beta') == ['a.ipynb', 'b.ipynb']
    assert s('--tag', 'gamma') == ['c.ipynb']
