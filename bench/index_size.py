"""What the index file holds, in MB, after a model has answered the judged questions: the token vectors a bi-encoder keeps
(`NbIndex.token_vecs`) against everything else.

    python bench/index_size.py ../shared/corpora ../shared/bench/dev_qrels.json             # all-MiniLM-L6-v2, whole folder
    python bench/index_size.py ../shared/corpora ../shared/bench/dev_qrels.json --model bm25

It searches a fresh index with each question of `qrels` (as `bench/quality.py` does), then measures vacuumed copies of
the file: as it is, and without its token rows (`ptoks`); and counts the passages and tokens those rows are of.
"""
import json, shutil, sqlite3, tempfile, warnings
from pathlib import Path
import numpy as np
from fastcore.script import call_parse
from nbsearch.core import rank_nbs, get_nb_paths
from nbsearch.evaluate import read_qrels
from nbsearch.models import load_model, offline_model

def _vacuumed_mb(p, drop_tokens=False):
    "Size in MB of a vacuumed copy of index `p` (without its token rows, if `drop_tokens`)"
    with tempfile.TemporaryDirectory() as d:
        c = Path(d)/'copy.db'
        src = sqlite3.connect(p); dst = sqlite3.connect(c)
        src.backup(dst); src.close()
        if drop_tokens: dst.execute('delete from ptoks'); dst.commit()
        dst.execute('vacuum'); dst.close()
        return c.stat().st_size/2**20

@call_parse
def main(
    corpus:str, # Folder of notebooks to search (all of it)
    qrels:str, # JSON file of judged questions (only the questions are used)
    model:str='all-MiniLM-L6-v2', # The ranking model (all-MiniLM-L6-v2: the packaged one; 'bm25': none)
):
    "Print the index's size with and without token vectors, and what those take per passage and per token"
    warnings.simplefilter('ignore')
    m = None if model=='bm25' else load_model(offline_model() if model=='all-MiniLM-L6-v2' else model)
    qs = list(read_qrels(qrels))
    print(f'{len(qs)} questions, {len(get_nb_paths(corpus))} notebooks, model {model}')
    with tempfile.TemporaryDirectory() as d:
        p = Path(d)/'index.db'
        for q in qs: rank_nbs(q, corpus, model=m, k=10, index=p, progress=False)
        from nbsearch.index import get_index
        get_index(p).close()
        db = sqlite3.connect(p)
        n_pass,n_bytes = db.execute('select count(*), coalesce(sum(length(scale)), 0) from ptoks').fetchone()
        db.close()
        whole,without = _vacuumed_mb(p),_vacuumed_mb(p, drop_tokens=True)
    print(f'index: {whole:.1f} MB; without token vectors: {without:.1f} MB')
    if n_pass: print(f'token vectors: {whole-without:.1f} MB for {n_pass:,} passages and {n_bytes//4:,} tokens: '
                     f'{(whole-without)*2**20/n_pass/1024:.1f} KB a passage, {(whole-without)*2**20/(n_bytes//4):.0f} bytes a token')
