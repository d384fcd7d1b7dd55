"""Can the cross-encoder's ONNX graph itself be made faster on a CPU? Scoring time of the export nbsearch makes (SDPA
attention) against an eager-attention export, onnxruntime's BERT optimizer on it (fused Attention), and int8 dynamic
quantization of each, on one thread, with each one's largest difference from sentence-transformers' scores.

    python bench/ce_variants.py ../shared/corpora --n 128 --rounds 9

The model is a random cross-encoder of TinyBERT-L2's shape (weights do not change speed; the score differences say
nothing of a real model's ranking). Texts: `n` passages of the folder, cut as a search cuts them.
"""
import time, shutil, tempfile, statistics as stats, numpy as np
from pathlib import Path
from fastcore.script import call_parse
import onnx
from onnxruntime.quantization import quantize_dynamic, QuantType
from onnxruntime.transformers import optimizer
from nbsearch.core import get_nb_paths, read_nb
from nbsearch.read import passages
from nbsearch import models as M

q = 'run a function over many items in parallel processes'

@call_parse
def main(corpus:str, n:int=128, rounds:int=9):
    "Print median scoring time per variant and its ratio to nbsearch's export"
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        src = M.tiny_cross_encoder(d/'tinybert-l2')
        m,st = M.load_model(str(src)),M.load_model(str(src), backend='torch')
        texts = [p.text for f in get_nb_paths(corpus)[:60] for p in passages(read_nb(f), m.offsets, 128)][:n]
        ref = M.cross_scores(st, q, texts)
        def folder(name):
            (o := d/name).mkdir()
            for f in m.path.iterdir():
                if f.is_file() and f.name!='model.onnx': shutil.copy(f, o/f.name)
            return o
        def q8(a, name):
            quantize_dynamic(str(a/'model.onnx'), str((o := folder(name))/'model.onnx'), weight_type=QuantType.QInt8,
                             extra_options={'DefaultTensorType': onnx.TensorProto.FLOAT})
            return o
        eager = folder('eager')
        for mod in st.model.modules():
            if hasattr(mod, 'config'): mod.config._attn_implementation = 'eager'
        M._write_onnx(st, eager, m.key)
        opt = folder('opt'); om = optimizer.optimize_model(str(eager/'model.onnx'), model_type='bert', num_heads=2, hidden_size=128)
        print('fused by the optimizer:', {k:v for k,v in om.get_fused_operator_statistics().items() if v}); om.save_model_to_file(str(opt/'model.onnx'))
        vs = {'nbsearch export (SDPA)': m.path, 'eager attention': eager, 'eager + optimizer': opt,
              'int8 (SDPA)': q8(m.path, 'q8'), 'int8 (eager + optimizer)': q8(opt, 'optq')}
        vs = {k:M.OnnxModel(p, threads=1) for k,p in vs.items()}
        ts,outs = {k:[] for k in vs},{}
        for _ in range(rounds):
            for k,v in vs.items():
                t = time.perf_counter(); outs[k] = v.score(q, texts); ts[k].append(time.perf_counter()-t)
    b = stats.median(ts['nbsearch export (SDPA)'])
    print(f'{len(texts)} passages, 1 thread, median of {rounds}')
    for k,v in ts.items(): print(f'{k:26} {stats.median(v)*1000:7.1f} ms  {stats.median(v)/b:.2f}x  max diff from sentence-transformers {np.abs(outs[k]-ref).max():.2g}')
