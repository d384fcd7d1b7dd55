"""What makes a cross-encoder's scoring faster on a CPU? ONNX Runtime on 1 thread (nbsearch's default) against 2 threads
(with and without spinning threads), and against the graph onnxruntime's BERT optimizer makes, on the same passages.

    python bench/ce_cpu.py ../shared/corpora --rounds 15                       # on a quiet machine
    python bench/ce_cpu.py ../shared/corpora --rounds 15 --burn 1              # with one core kept busy by another process

The model is a random cross-encoder of `cross-encoder/ms-marco-TinyBERT-L2-v2`'s shape (weights do not change its speed),
exported to ONNX by nbsearch. The texts are `n` passages of the folder, cut as a search cuts them. Each figure is the
median of `rounds` rounds that run every variant in turn, so a change of load hits all of them alike.
"""
import time, tempfile, subprocess, sys, statistics as stats
from pathlib import Path
from fastcore.script import call_parse
import onnxruntime as ort
from nbsearch.core import get_nb_paths, read_nb
from nbsearch.read import passages
from nbsearch.models import tiny_cross_encoder, load_model, OnnxModel

q = 'run a function over many items in parallel processes'

def _variant(m, threads, spin=True, path=None):
    o = OnnxModel(path or m.path, name=m.name, threads=threads)
    so = ort.SessionOptions(); so.intra_op_num_threads,so.log_severity_level = threads,3
    if not spin: so.add_session_config_entry('session.intra_op.allow_spinning', '0')
    o.sess = ort.InferenceSession(str(Path(path or m.path)/'model.onnx'), so, providers=['CPUExecutionProvider'])
    return o

@call_parse
def main(
    corpus:str, # Folder of notebooks to take passages from
    n:int=64, # Passages scored per call (a search scores 128 by default)
    rounds:int=15, # Rounds; each figure is a median
    burn:int=0, # Processes that keep a core busy meanwhile
):
    "Print the median time to score `n` passages with each variant, and its ratio to 1 thread"
    with tempfile.TemporaryDirectory() as d:
        m = load_model(str(tiny_cross_encoder(Path(d)/'tinybert-l2')))
        assert isinstance(m, OnnxModel), 'needs onnxruntime (pip install "nbsearch[onnx]")'
        texts = [p.text for f in get_nb_paths(corpus)[:40] for p in passages(read_nb(f), m.offsets, 128)][:n]
        from onnxruntime.transformers import optimizer
        opt = Path(d)/'opt'; opt.mkdir()
        for f in m.path.iterdir():
            if f.is_file(): (opt/f.name).write_bytes(f.read_bytes())
        om = optimizer.optimize_model(str(m.path/'model.onnx'), model_type='bert', num_heads=2, hidden_size=128)
        print('fusions the optimizer found:', {k:v for k,v in om.get_fused_operator_statistics().items() if v})
        om.save_model_to_file(str(opt/'model.onnx'))
        vs = {'1 thread': _variant(m, 1), '2 threads': _variant(m, 2), '2 threads, no spinning': _variant(m, 2, False),
              '1 thread, BERT optimizer': _variant(m, 1, path=opt)}
        burners = [subprocess.Popen([sys.executable, '-c', 'while 1: pass']) for _ in range(burn)]
        try:
            ts = {k:[] for k in vs}
            for _ in range(rounds):
                for k,v in vs.items():
                    t = time.perf_counter(); v.score(q, texts); ts[k].append(time.perf_counter()-t)
        finally:
            for b in burners: b.kill()
    base = stats.median(ts['1 thread'])
    print(f'{len(texts)} passages, {burn} busy cores beside')
    for k,v in ts.items(): print(f'{k:<26} {stats.median(v)*1000:7.1f} ms  {stats.median(v)/base:.2f}x')
