"""How an ONNX model should run on a CPU: batch size, and batches run at once (`OnnxModel.threads`) against onnxruntime's
own threads, on real passages. Every setting runs in this process, in turn, on the same inputs, so a busy machine slows
them alike; each number is a median over `reps` turns, and each ratio is against the old default (batches of 32, one thread).

    python bench/onnx_batches.py ../shared/corpora --reps 9

The cross-encoder is a random model of `cross-encoder/ms-marco-TinyBERT-L2-v2`'s shape (weights do not change its speed),
scoring (query, passage) pairs as a search does (64 pairs: about a first round); the bi-encoder is all-MiniLM-L6-v2
embedding 64 passages (as a first index does). `--blas` also runs a matrix-vector product through numpy's BLAS before
each call, as a search's dense leg did, to show what its threads cost the model. The last setting, *steady*, is how `embed`
runs on a CPU: each text padded to a width of its own and every batch full, so that its output does not depend on the others.
"""
import time, statistics as stats, tempfile, numpy as np
from pathlib import Path
from fastcore.script import call_parse
from nbsearch.models import OnnxModel, load_model, offline_model, tiny_cross_encoder, model_tok
from nbsearch.read import get_nb_paths, read_nb, passages

@call_parse
def main(
    corpus:str, # A folder of notebooks to take passages from
    reps:int=9, # Turns per setting
    n:int=64, # Passages per call
    bi:bool=True, # Time the bi-encoder too (slow: about 2 s a call here)
    blas:bool=False, # Run a BLAS product before each call
):
    "Print ms per call, and the ratio to batches of 32 on one thread, for each setting"
    rng = np.random.default_rng(0)
    vecs,qv = rng.random((12000, 256), dtype='float32'),rng.random(256, dtype='float32')
    with tempfile.TemporaryDirectory() as d:
        models = [('cross-encoder (TinyBERT-L2 shape)', load_model(str(tiny_cross_encoder(Path(d)/'tiny'))))]
        if bi: models.append(('bi-encoder (all-MiniLM-L6-v2)', load_model(offline_model())))
        for name,m in models:
            ps = [p.text for f in get_nb_paths(corpus)[::3] for p in passages(read_nb(f), model_tok(m), 128, 32)]
            def mk(threads, intra=1):
                o = OnnxModel(m.path, name=m.name, threads=threads)
                if intra>1:  # onnxruntime's own threads splitting each batch, as before
                    import onnxruntime as ort
                    so = ort.SessionOptions(); so.intra_op_num_threads,so.log_severity_level = intra,3
                    o.sess = ort.InferenceSession(str(o.path/'model.onnx'), so, providers=['CPUExecutionProvider'])
                return o
            settings = {'batch 32, 1 thread (old)': (mk(1), 32), 'batch 32, onnxruntime 2 threads': (mk(1, 2), 32),
                        'batch 8, 1 thread': (mk(1), 8), 'batch 4, 1 thread': (mk(1), 4), 'batch 16, 2 at once': (mk(2), 16),
                        'batch 8, 2 at once': (mk(2), 8), 'batch 4, 2 at once (new)': (mk(2), 4),
                        'batch 4, 2 at once, steady': (mk(2), 4, True)}  # as `embed` runs on a CPU (see `OnnxModel._run`)
            ts = {k:[] for k in settings}
            for r in range(reps):
                texts = list(rng.choice(ps, n))
                encs = m._pairs('run a function over many items in parallel', texts) if m.kind=='cross' else m.tok.encode_batch(texts)
                for k,(o,bs,*steady) in settings.items():
                    if blas: vecs @ qv
                    t = time.perf_counter(); o._run(encs, bs, *steady); ts[k].append(time.perf_counter()-t)
            base = ts['batch 32, 1 thread (old)']
            print(f"\n{name}: {n} texts a call, {np.mean([len(e.ids) for e in encs]):.0f} tokens each on average, median of {reps}{', BLAS product before each' if blas else ''}")
            for k,v in ts.items():
                print(f"  {k:34} {stats.median(v)*1000:8.1f} ms   {stats.median([a/b for a,b in zip(v, base)]):.2f}x")
