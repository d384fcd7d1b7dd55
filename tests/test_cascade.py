"A cross-encoder reads the shortlist in two rounds (`nbsearch.search.deepen`): checked through `rank_nbs` with a real (random) cross-encoder"
import json, random
from pathlib import Path
import numpy as np
import pytest
import nbsearch.search as S
from nbsearch.core import rank_nbs
from nbsearch.models import tiny_cross_encoder, load_model

pytest.importorskip('onnxruntime', reason="the tiny cross-encoder runs on nbsearch[onnx]")
words = ('port process kill server socket notebook cell export git merge commit plot price chart search web query index cache '
         'token model score rank passage folder file json parse download thread pool parallel config path').split()

class Counting:
    "Cross-encoder `m` (an nbsearch ONNX model), counting the passages it reads"
    def __init__(self, m): self.m,self.read = m,0
    def __getattr__(self, k): return getattr(self.m, k)
    def score(self, q, texts): self.read += len(texts); return self.m.score(q, texts)

@pytest.fixture(scope='module')
def ce(tmp_path_factory): return load_model(str(tiny_cross_encoder(tmp_path_factory.mktemp('m')/'tiny-ce')))

@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    "40 notebooks of 6 markdown cells, each cell a passage of its own"
    d,r = tmp_path_factory.mktemp('nbs'),random.Random(0)
    for i in range(40):
        cells = [dict(cell_type='markdown', metadata={}, source=f'# Notebook {i}')] + [
            dict(cell_type='markdown', metadata={}, source=' '.join(r.choice(words) for _ in range(70))) for _ in range(6)]
        (d/f'nb{i:02}.ipynb').write_text(json.dumps(dict(cells=cells, metadata={}, nbformat=4, nbformat_minor=5)))
    return d

def hits(q, folder, m, deepen, **kw):
    was,S.deepen = S.deepen,deepen
    try: return rank_nbs(q, folder, model=m, index=False, progress=False, **kw)
    finally: S.deepen = was

def test_two_rounds_read_less_and_rank_the_top_as_one_round_does(folder, ce):
    q = 'kill the process on a port'
    one,two = Counting(ce),Counting(ce)
    flat,cas = hits(q, folder, one, None),hits(q, folder, two, 10)
    assert 30 <= two.read < one.read <= 128, (two.read, one.read)
    # round 2 reads through the 10 notebooks that round 1 scored highest, and they stay the top 10: their scores are those
    # of reading every passage, and every other notebook scores no higher than the 10th
    fs = {h.path:h.score for h in flat}
    assert all(np.isclose(h.score, fs[h.path], atol=1e-6) for h in cas[:10])
    assert all(h.score <= cas[9].score for h in cas[10:])
    assert len(cas)==len(flat)  # every shortlisted notebook is still ranked
    assert [(h.path, h.score, h.cell) for h in hits(q, folder, ce, 10)]==[(h.path, h.score, h.cell) for h in cas]  # and again alike

def test_the_number_of_hits_changes_nothing(folder, ce):
    "Round 2 reads the same notebooks whatever `k` is: the first hits of `k=20` are those of `k=10` and of `k=None`, scores included"
    q = 'merge a git commit'
    h10,h20,hall = (hits(q, folder, ce, 10, k=k) for k in (10, 20, None))
    row = lambda hs: [(h.path, h.score, h.cell) for h in hs]
    assert len(h10)==10 and len(h20)==20
    assert row(h20)[:10]==row(h10) and row(hall)[:20]==row(h20)
