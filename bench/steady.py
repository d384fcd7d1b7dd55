"""Does an ONNX model's output for a text depend on the batch it runs in? Checks the conditions `OnnxModel._run` holds
for `embed` on a CPU (*steady* batches: every row padded, at least by one position; never a batch of one row).

    python bench/steady.py

all-MiniLM-L6-v2 (the packaged model, through nbsearch's ONNX export) embeds 40 texts of 5-90 random words, each
(a) alone, unpadded, (b) in a batch of 2, unpadded, (c) padded by 1, batch of 1, and, as the reference, padded by 1 in a
batch of 2 beside a copy; then padded by 2 to 64 positions in batches of 2, 4 and 8 beside other texts. It prints how
many texts give the reference's output to the bit in each case, and the timing of `embed` steady or not, in turns.
"""
import random, time, statistics as stats, numpy as np
from nbsearch.models import load_model, offline_model, _onnx_feeds

def run(m, rows, n):
    "Raw outputs of `m` for encodings `rows` padded to width `n`"
    pad = lambda a,v: np.array([x+[v]*(n-len(x)) for x in (getattr(e, a) for e in rows)], dtype='int64')
    return m.sess.run(None, {k: pad(_onnx_feeds[k], m.pad_id if k=='input_ids' else 0) for k in m.inputs})[0]

if __name__=='__main__':
    m = load_model(offline_model())
    random.seed(0)
    words = 'notebook export module cell function test index search query port kill process'.split()
    texts = [' '.join(random.choice(words) for _ in range(random.randint(5, 90))) for _ in range(40)]
    encs = m.tok.encode_batch(texts)
    ref = [run(m, [x, x], len(x.ids)+1)[0] for x in encs]
    same = lambda outs: sum(bool((o==r).all()) for o,r in zip(outs, ref))
    print(f"{len(encs)} texts, {min(len(e.ids) for e in encs)}-{max(len(e.ids) for e in encs)} tokens; same as padded by 1 in a batch of 2:")
    print(f"  alone, unpadded:            {same([run(m, [x], len(x.ids))[0] for x in encs])}")
    print(f"  batch of 2, unpadded:       {same([run(m, [x, x], len(x.ids))[0] for x in encs])}")
    print(f"  alone, padded by 1:         {same([run(m, [x], len(x.ids)+1)[0] for x in encs])}")
    for d in (2, 5, 9, 17, 33, 64):
        for M in (2, 4, 8):
            outs = []
            for i,x in enumerate(encs):
                comp = [c for c in (encs[(i+k*7)%len(encs)] for k in range(1, M)) if len(c.ids)<=len(x.ids)+d]
                outs.append(run(m, [x]+comp+[x]*(M-1-len(comp)), len(x.ids)+d)[0])
            print(f"  padded by {d:2}, batch of {M}:    {same(outs)}  (beside other texts)")
    ts = {False: [], True: []}
    for r in range(7):
        for steady in ts:
            t = time.perf_counter(); m._run(encs, None, steady); ts[steady].append(time.perf_counter()-t)
    print(f"embed's model run, 40 texts, median of 7 in turns: {stats.median(ts[False])*1000:.0f} ms as before, "
          f"{stats.median(ts[True])*1000:.0f} ms steady ({stats.median([b/a for a,b in zip(ts[False], ts[True])]):.2f}x)")
