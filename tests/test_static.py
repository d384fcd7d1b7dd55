"The packaged static model: same vectors as model2vec and sentence-transformers, no heavy imports, same passages as MiniLM"
import hashlib, json, os, subprocess, sys
import numpy as np
import pytest
from nbsearch.static import static_model, static_path, load_static

texts = ['Turn a function into a command line script', 'make terminal text red', 'def f(x): return x**2  # squares',
         'Ünïcödé façade — naïve café', 'x'*300, '', 'a 😀 b']


def test_same_vectors_as_model2vec():
    "model2vec's own `StaticModel.encode` gives the same vectors for the packaged folder, `[UNK]` and empty texts included"
    m2v = pytest.importorskip('model2vec')
    ref = m2v.StaticModel.from_pretrained(static_path()).encode(texts)
    got = static_model().embed(texts)
    assert ref.shape == got.shape
    assert np.abs(ref.astype(np.float32)-got).max() < 1e-5


def test_same_vectors_as_sentence_transformers():
    "sentence-transformers' `StaticEmbedding` over the same tokenizer and rows agrees on texts with tokens it and model2vec both keep"
    from tokenizers import Tokenizer
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    sm = static_model()
    se = StaticEmbedding(Tokenizer.from_file(str(static_path()/'tokenizer.json')), embedding_weights=sm.vectors.astype(np.float32))
    ts = texts[:4]
    ref = SentenceTransformer(modules=[se], device='cpu').encode(ts, normalize_embeddings=True)
    assert np.abs(ref-sm.embed(ts)).max() < 1e-5


def test_no_heavy_imports():
    "Loading the model, cutting passages and embedding import none of torch, transformers, sentence-transformers or model2vec"
    code = ("import sys\nfrom nbsearch.static import static_model\nm = static_model()\nm.offsets(['a b']); v = m.embed(['a b', 'c'])\n"
            "bad = [k for k in ('torch', 'transformers', 'sentence_transformers', 'model2vec', 'safetensors') if k in sys.modules]\n"
            "print(v.shape, bad)")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env={**os.environ, 'PYTHONPATH': os.getcwd()})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == '(2, 256) []'


def test_tok_key_is_minilms():
    "The packaged model uses all-MiniLM-L6-v2's tokenizer: the same `tok_key`, so the same passages"
    from tokenizers import Tokenizer
    from nbsearch import models
    if not models.offline_model(): pytest.skip('all-MiniLM-L6-v2 (nbsearch[offline]) is not installed')
    t = Tokenizer.from_file(f'{models.offline_model()}/tokenizer.json')
    t.no_truncation(); t.no_padding()  # how `nbsearch.models.tok_key` hashes a tokenizer
    assert static_model().tok_key == hashlib.sha1(t.to_str().encode()).hexdigest()[:12]
    if hasattr(models, '_tok_str'):  # the models module that hashes tokenizers that way
        assert static_model().tok_key == models.tok_key(models.load_model(models.offline_model()))


def test_model_protocol():
    "The attributes nbsearch's model protocol asks of a bi-encoder"
    sm = static_model()
    assert (sm.kind, sm.name, sm.max_seq_length) == ('bi', 'static-minilm', 512)
    assert isinstance(sm.key, str) and len(sm.key) == 16 and isinstance(sm.tok_key, str)
    v = sm.embed(texts)
    assert v.dtype == np.float32 and v.shape == (len(texts), 256)
    np.testing.assert_allclose(np.linalg.norm(v[:4], axis=1), 1, atol=1e-5)
    assert not v[4:6].any()  # a 300-letter word is [UNK], and '' has no token: zero rows
    assert [len(o) for o in sm.offsets(['one two', ''])] == [2, 0]


def test_key_follows_weights(tmp_path):
    "A copy with other weights gets another `key`, an identical copy the same one"
    import shutil
    for d in ('same', 'other'): shutil.copytree(static_path(), tmp_path/d)
    p = tmp_path/'other'/'model.safetensors'
    b = bytearray(p.read_bytes()); b[-1] ^= 1; p.write_bytes(bytes(b))
    assert load_static(tmp_path/'same').key == static_model().key
    assert load_static(tmp_path/'other').key != static_model().key


def test_package_data_is_small():
    "The packaged model stays small, and says its license"
    size = sum(f.stat().st_size for f in static_path().iterdir())
    assert size < 9e6
    assert 'Apache-2.0' in (static_path()/'README.md').read_text()


def test_linear_time():
    "Tokenizing and embedding adversarial text (one long word, many short ones) grows linearly: 10x the text, not 100x the CPU time"
    import time
    sm = static_model()
    def cpu(s):
        t = time.process_time(); v = sm.embed([s]); sm.offsets([s])
        assert v.shape == (1, 256)
        return time.process_time()-t
    for f in [lambda n: 'a'*n, lambda n: 'a '*(n//2), lambda n: '\u00e9'*(n//2), lambda n: '('*n, lambda n: 'ab_cd.'*(n//6)]:
        small,big = cpu(f(100_000)),cpu(f(1_000_000))
        assert big < 25*small+0.5, (small, big)


weird = ['Café ünïcode — naïve résumé', "print('héllo') # 日本語 中文 한국어", 'x = [MASK] [CLS] foo[SEP]bar [unk] [PAD]',
         'tabs\tand\x0bvertical\x0cfeed\x1fctrl\x7fdel \x00nul', 'emoji 🎉 snake_case CamelCaseName a.b.c', 'Ελληνικά русский ǅ ﬁ',
         'under__score __dunder__ _private x_1 1e-5 0x1F 3.14 $HOME ~/a|b^c`d', 'zero\u200bwidth nbsp\u00a0space', 'e\u0301 a\u0308',
         'verylongword'*12 + ' ' + 'x'*130, 'word '*600, '\t\r\n  \n', '']

def test_word_ids_are_the_tokenizers():
    "Token ids joined from cached words equal the tokenizer's own, id for id, on every passage of the corpora and on odd text"
    from nbsearch.read import get_nb_paths, read_nb, passages
    from pathlib import Path
    sm = static_model()
    root = Path(__file__).parent
    notebooks = [read_nb(p) for f in (root/'corpus', root.parent.parent/'shared'/'corpora', Path('/work/shared/corpora')) if f.exists() for p in get_nb_paths(f)]
    ts = [p.text for nb in notebooks for p in passages(nb, sm.offsets)] + texts + weird
    assert len(ts) > 100
    ref = [[i for i in e.ids if i!=sm.unk] for e in sm._etok.encode_batch_fast(ts, add_special_tokens=False)]
    flat,n = sm._tokens(ts)
    assert n.tolist() == [len(o) for o in ref] and flat.tolist() == [i for o in ref for i in o]
    assert sm._bt is not None  # the fast path (`nbsearch.tokens.bert_tokens`)
