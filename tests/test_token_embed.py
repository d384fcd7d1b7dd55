"""Token embeddings of a bi-encoder exported to ONNX: a fresh export has them, and an export from before them is made again.

Each test runs in a new process with its own XDG cache, so no export is shared with the notebooks' or another test's.
"""
import os, sys, json, subprocess
import pytest

onnx = pytest.importorskip('onnxruntime', reason="the ONNX tests need nbsearch[onnx]")

stale = r"""
import json, os, sys, warnings
import numpy as np
warnings.simplefilter('ignore')
from pathlib import Path
import nbsearch.models as M
from sentence_transformers import SentenceTransformer, models
from transformers import BertConfig, BertModel, AutoTokenizer
import torch
d = Path(sys.argv[1])
torch.manual_seed(0)  # a random 2-layer BERT with MiniLM's tokenizer, pooled by the mean, as MiniLM is
BertModel(BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)).save_pretrained(d/'bert')
AutoTokenizer.from_pretrained(M.offline_model()).save_pretrained(d/'bert')
t = models.Transformer(str(d/'bert'), max_seq_length=32)
SentenceTransformer(modules=[t, models.Pooling(64, 'mean'), models.Normalize()]).save(str(d/'bi'))
o = M.load_model(str(d/'bi'), backend='onnx')
x = M._onnx_dir(o.key)
meta = json.loads((x/'nbsearch.json').read_text())
print('fresh', meta['format'], [s.name for s in o.sess.get_outputs()])
(x/'nbsearch.json').write_text(json.dumps(meta|{'format': 1}))  # as the export of an nbsearch before token embeddings
before = (x/'model.onnx').stat().st_mtime_ns
M._models.clear()
o2 = M.load_model(str(d/'bi'), backend='onnx')
print('again', json.loads((x/'nbsearch.json').read_text())['format'], (x/'model.onnx').stat().st_mtime_ns!=before,
      sorted(p.name for p in x.parent.iterdir()))
st = M.load_model(str(d/'bi'), backend='torch')
texts = ['kill the process on a port', 'x', 'a long text to cut ' * 20]
a,b = M.token_embed(o2, texts),M.token_embed(st, texts)
print('shapes', [t.shape for t in a]==[t.shape for t in b], [len(t) for t in a])
print('diff', max(float(np.abs(x-y).max()) for x,y in zip(a, b)) < 1e-4)
"""

def test_a_stale_export_is_made_again_with_token_embeddings(tmp_path):
    env = {k:v for k,v in os.environ.items() if k not in ('NBSEARCH_BACKEND',)} | dict(XDG_CACHE_HOME=str(tmp_path/'cache'), HF_HUB_OFFLINE='1')
    r = subprocess.run([sys.executable, '-c', stale, str(tmp_path)], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode==0, r.stderr[-3000:]
    out = dict(l.split(' ', 1) for l in r.stdout.strip().splitlines())
    assert out['fresh']=="2 ['out', 'tokens']"
    key = json.loads(next((tmp_path/'cache'/'nbsearch'/'onnx').glob('*/nbsearch.json')).read_text())['key']
    assert out['again']==f"2 True ['{key}']", out  # exported again, in place; the old folder is gone, nothing left beside it
    assert out['shapes']=='True [8, 3, 32]', out  # [CLS] ... [SEP], no padding, cut at max_seq_length as `embed` cuts
    assert out['diff']=='True'
