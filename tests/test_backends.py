"A bi-encoder run by torch and its ONNX export round differently: token vectors either stored are never read by the other"
import numpy as np
from nbsearch.core import rank_nbs, get_index
from nbsearch.models import load_model, offline_model

def _scores(q, m, index): return [(h.path.name, h.score) for h in rank_nbs(q, 'tests/corpus', model=m, k=5, index=index)]

def test_torch_vectors_are_not_read_by_the_onnx_model(tmp_path):
    q,db = 'how do I kill the process on port 8000',tmp_path/'index.db'
    torch_m,onnx_m = load_model(offline_model(), backend='torch'),load_model(offline_model(), backend='onnx')
    _scores(q, torch_m, db)  # a first search by torch stores its token vectors
    test = _scores(q, onnx_m, db)
    assert test==_scores(q, onnx_m, tmp_path/'fresh.db')  # the same scores as on an index torch never wrote to, to the bit
    assert test==_scores(q, onnx_m, False)  # and on one in memory
