"""What nbsearch trusts: a file named as the index is nbsearch's only with proof, a link is not written through, and searches
started together on a new index each get the hits of a lone run (a hostile review of main, defects 1-4).

Each test builds its fixtures in a temporary folder and runs the `nbsearch` command in subprocesses, with timeouts.
"""
import os, sys, json, shutil, sqlite3, hashlib, subprocess
from pathlib import Path
import pytest
from nbsearch.core import rank_nbs, NotAnIndexError
from nbsearch.index import NbIndex, index_owner
from test_hardening import mk_corpus

cli = str(Path(sys.executable).parent/'nbsearch')
corpus = Path(__file__).parent/'corpus'

def run_cli(*args, env=None, timeout=300, cwd=None):
    return subprocess.run([cli, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})})

def files(d):
    "Every entry in folder `d` (links as links), with the SHA-1 of a regular file's bytes"
    return {p.name: 'link' if p.is_symlink() else hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(Path(d).iterdir())}

def notes_db(p):
    "The reviewer's file: someone's SQLite notes with a `meta` table and a `version` row, as nbsearch's unmarked indexes had"
    db = sqlite3.connect(p)
    db.executescript("""create table meta (k text primary key, v text); insert into meta values ('version', '3');
        create table docs (id integer primary key, body text); insert into docs (body) values ('my precious notes');""")
    db.close()
    return p

def assert_refused(r, says):
    assert r.returncode==2, (r.returncode, r.stdout, r.stderr)
    assert says in r.stderr and 'Traceback' not in r.stderr and 'rebuilding' not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines())==1, r.stderr


# 1. a foreign SQLite file with a `meta` table and a `version` row was taken for an old index and deleted
@pytest.mark.parametrize('where', ['named', 'default'])
def test_foreign_sqlite_with_a_version_row_is_kept(tmp_path, where):
    "Someone's SQLite file, `meta` table and `version` row included, named as the index (or at the default path): an error, and it stays byte for byte"
    d = tmp_path/'cache'/'nbsearch' if where=='default' else tmp_path/'d'
    d.mkdir(parents=True)
    f = notes_db(d/('index.db' if where=='default' else 'notes.db'))
    before = files(d)
    args = ('kill port', corpus, '--model', 'bm25') + (('--index', f) if where=='named' else ())
    assert_refused(run_cli(*args, env={'XDG_CACHE_HOME': str(tmp_path/'cache')}), 'not an nbsearch index')
    with pytest.raises(NotAnIndexError, match='not an nbsearch index'): rank_nbs('kill port', corpus, model=None, index=f)
    assert files(d)==before
    assert sqlite3.connect(f'file:{f}?mode=ro', uri=True).execute('select body from docs').fetchall()==[('my precious notes',)]


# 2. a symbolic link to no file as the index: RecursionError
@pytest.mark.parametrize('target', ['nowhere/x.db', 'x.db', 'd.db'])
def test_link_to_no_file_is_a_clear_error(tmp_path, target):
    "A link to a file that does not exist (in a missing folder, in an existing one, or to itself): one line, exit 2, nothing created"
    d = tmp_path/'d'; d.mkdir()
    (d/'d.db').symlink_to(d/target)
    r = run_cli('q', corpus, '--model', 'bm25', '--index', d/'d.db', timeout=120)
    assert_refused(r, 'symbolic link')
    assert 'RecursionError' not in r.stderr
    assert files(d)=={'d.db': 'link'} and os.readlink(d/'d.db')==str(d/target)
    with pytest.raises(NotAnIndexError, match='symbolic link'): NbIndex(d/'d.db')

@pytest.mark.parametrize('schema', [None, 2])
def test_link_to_an_index_is_followed(tmp_path, schema):
    "A link to an nbsearch index is still an index, searched (and rebuilt, when its schema is old) where the link leads: the link stays a link"
    NbIndex(tmp_path/'real.db').close()
    if schema: db = sqlite3.connect(tmp_path/'real.db'); db.execute(f'pragma user_version={schema}'); db.close()
    (tmp_path/'link.db').symlink_to(tmp_path/'real.db')
    r = run_cli('kill port', corpus, '--model', 'bm25', '--index', tmp_path/'link.db', '-k', '1', '--json', timeout=120)
    assert r.returncode==0, r.stderr
    assert Path(json.loads(r.stdout)[0]['path']).name=='ports.ipynb'
    assert (tmp_path/'link.db').is_symlink() and index_owner(tmp_path/'real.db')=='ours'
    assert sqlite3.connect(tmp_path/'real.db').execute('select count(*) from docs').fetchone()[0]>0


# 3. inspecting a foreign WAL-mode file left `-wal` and `-shm` files beside it
def _wal_db(p, close=True):
    db = sqlite3.connect(p)
    db.execute('pragma journal_mode=wal')
    db.executescript("create table notes (t text); insert into notes values ('mine');")
    if close: db.close()
    return db

def test_foreign_wal_file_gets_no_side_files(tmp_path):
    "A foreign database in WAL mode, closed (no `-wal`/`-shm` beside it): refused, and nothing appears beside it"
    d = tmp_path/'d'; d.mkdir()
    _wal_db(d/'other.db')
    before = files(d)
    assert list(before)==['other.db']
    assert_refused(run_cli('q', corpus, '--model', 'bm25', '--index', d/'other.db', timeout=120), 'not an nbsearch index')
    assert files(d)==before

def test_foreign_hot_wal_is_untouched(tmp_path):
    "A foreign database caught mid-write (a log not yet checkpointed, its `-shm` beside it): all three files stay byte for byte"
    live = tmp_path/'live'; live.mkdir()
    db = _wal_db(live/'hot.db', close=False)
    db.execute("insert into notes values ('unsaved')"); db.commit()
    d = tmp_path/'d'; d.mkdir()
    for s in ('', '-wal', '-shm'): shutil.copyfile(live/f'hot.db{s}', d/f'hot.db{s}')
    db.close()
    before = files(d)
    assert_refused(run_cli('q', corpus, '--model', 'bm25', '--index', d/'hot.db', timeout=120), 'not an nbsearch index')
    assert files(d)==before


# 4. searches started together on a new index: one found nothing, exit 0
@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    from nbsearch.models import tiny_cross_encoder
    return tiny_cross_encoder(tmp_path_factory.mktemp('m')/'tiny-ce')

def _start(q, c, model, ix, env):
    return subprocess.Popen([cli, q, str(c), '--model', str(model), '--index', str(ix), '--json', '-k', '5', '-q'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

def _finish(p, timeout=300):
    try: out,err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired: p.kill(); out,err = p.communicate(); pytest.fail(f'a search hung: {err[-2000:]}')
    assert p.returncode==0, err[-3000:]
    return [(h['path'], round(h['score'], 5)) for h in json.loads(out)]

def test_concurrent_first_searches_get_the_lone_hits(tmp_path, tiny):
    "Three searches with a cross-encoder started at once on a new index file, twice: each gets the hits of a lone run"
    c = mk_corpus(tmp_path/'c', 60)
    env = {**os.environ, 'XDG_CACHE_HOME': str(tmp_path/'cache'), 'TOKENIZERS_PARALLELISM': 'false'}
    q = 'port server request'
    _finish(_start(q, c, tiny, tmp_path/'warm.db', env))  # prepares the model's faster form, once, before the race (its scores differ in the 7th digit)
    lone = _finish(_start(q, c, tiny, tmp_path/'lone.db', env))
    assert len(lone)==5
    for rnd in range(2):
        ix = tmp_path/f'new{rnd}.db'
        ps = [_start(q, c, tiny, ix, env) for _ in range(3)]
        assert [_finish(p) for p in ps]==[lone]*3
