"What notebooks hold is shown as written: the Markdown of `Hits` and of the `%nbsearch` magic, rendered as Jupyter renders a table"
import re, html
import pytest
from markdown_it import MarkdownIt
from nbsearch.search import Hit, Hits
from nbsearch.magic import MagicHits

snips = ['use `\\n` here', 'def __init__(self)', 'a *a* b', 'x <b>bold</b> y', 'a\\|b c', 'see [x](y)', 'tick ` alone',
         '**s** _u_ ~~t~~ &amp; &lt;', '<script>alert(1)</script>', 'a|b|c', 'maths $x^2$ here', '![i](javascript:alert(1))']
md = MarkdownIt('gfm-like').disable('linkify')

@pytest.mark.parametrize('show', [Hits, lambda hs: MagicHits('q', hs)], ids=['Hits', 'magic'])
def test_snippets_and_titles_render_as_written(show):
    hs = [Hit(f'/n/a b_{i}.ipynb', 1., f'T *{i}* `x` <i>', i, s) for i,s in enumerate(snips)]
    out = md.render(show(hs)._repr_markdown_())
    rows = re.findall(r'<tr>(.*?)</tr>', out, re.S)
    assert len(rows)==len(snips)+1 and {len(re.findall(r'<t[dh][ >]', r)) for r in rows}=={5}  # one row a hit, 5 cells each
    assert set(re.findall(r'</?([a-zA-Z]+)', out)) <= {'table', 'thead', 'tbody', 'tr', 'td', 'th', 'a'}  # no tag from a notebook
    text = lambda c: html.unescape(re.sub(r'<[^>]+>', '', c))
    for i,(s,r) in enumerate(zip(snips, rows[1:])):
        cells = re.findall(r'<td[^>]*>(.*?)</td>', r, re.S)
        assert text(cells[-1])==s and text(cells[2])==f'T *{i}* `x` <i>', cells
