"A bi-encoder run by torch and its ONNX export round differently: token vectors either stored are never read by the other"
import pytest
import nbsearch.models as M
from nbsearch.core import rank_nbs
from nbsearch.models import load_model, offline_model

@pytest.fixture
def own_models(tmp_path, monkeypatch):
    "A private ONNX export cache, and models loaded afresh: nothing seen by the other tests' (`load_model` caches per process)"
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'xdg'))
    saved = dict(M._models); M._models.clear()
    yield
    M._models.clear(); M._models.update(saved)

def _scores(q, m, index): return [(h.path.name, h.score) for h in rank_nbs(q, 'tests/corpus', model=m, k=5, index=index)]

def test_torch_vectors_are_not_read_by_the_onnx_model(tmp_path, own_models):
    q,db = 'how do I kill the process on port 8000',tmp_path/'index.db'
    torch_m,onnx_m = load_model(offline_model(), backend='torch'),load_model(offline_model(), backend='onnx')
    _scores(q, torch_m, db)  # a first search by torch stores its token vectors
    test = _scores(q, onnx_m, db)
    assert test==_scores(q, onnx_m, tmp_path/'fresh.db')  # the same scores as on an index torch never wrote to, to the bit
    assert test==_scores(q, onnx_m, False)  # and on one in memory
