"One notebook that mentions the query's words in thousands of cells must not hide the other notebooks that mention them"
import json
from nbsearch.core import rank_nbs

def _nb(path, texts):
    cells = [dict(cell_type='markdown', id=f'c{i}', metadata={}, source=t) for i,t in enumerate(texts)]
    path.write_text(json.dumps(dict(cells=cells, metadata={}, nbformat=4, nbformat_minor=5)))

def test_a_huge_notebook_does_not_fill_the_candidates(tmp_path):
    _nb(tmp_path/'huge.ipynb', [f'# Part {i}\n\nThe port {i} is bad: port traffic on port {i} is blocked.' for i in range(3000)])
    for i in range(20): _nb(tmp_path/f'small{i:02d}.ipynb', [f'# Note {i}', f'Which port does service {i} use? A bad port, it seems.'])
    hits = rank_nbs('port bad', tmp_path, model=None, k=40, index=False)
    assert len(hits)==21, [h.path for h in hits]  # every notebook that mentions the words (before: only the huge one)
