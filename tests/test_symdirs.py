"""Symlinked folders: what `nbs/00_read.ipynb` cannot show in a cell, because it needs permissions, many links or a search.

`get_nb_paths` follows a link to a folder, as nbdev's `nbglob` does, and walks each real folder once."""
import os, sys, time, shutil, tempfile, subprocess, warnings
from pathlib import Path
import pytest
from conftest import as_other_user
from fastcore.nbio import new_nb, mk_cell, write_nb
import nbsearch.read as rd
from nbsearch.read import get_nb_paths, _nb_files

def mk(p, src='# x'):
    "A notebook at `p` with one markdown cell `src`"
    p.parent.mkdir(parents=True, exist_ok=True)
    write_nb(new_nb([mk_cell(src, 'markdown')]), p)
    return p

def rel(ps, d): return [Path(p).relative_to(d).as_posix() for p in ps]

def test_links_to_what_cannot_be_read(open_tmp):
    "A linked folder that cannot be read: one warning naming the link. A link `stat` cannot follow: a broken notebook when named like one, passed over otherwise"
    c,out = open_tmp/'c',open_tmp/'out'
    mk(c/'ok.ipynb'); mk(out/'locked'/'in.ipynb'); mk(out/'shut'/'inner'/'in.ipynb')
    (c/'locked').symlink_to(out/'locked', target_is_directory=True)
    (c/'shut').symlink_to(out/'shut'/'inner', target_is_directory=True)
    (c/'shut.ipynb').symlink_to(out/'shut'/'inner', target_is_directory=True)
    os.chmod(out/'locked', 0); os.chmod(out/'shut', 0o600)  # `shut` can be listed but not entered: `stat` fails on what is in it
    r = as_other_user(f'''
import warnings
from nbsearch.read import get_nb_paths
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter('always')
    print([p.name for p in get_nb_paths({str(c)!r})])
print(len(w))
for o in w: print(o.message)''')
    assert r.returncode==0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2]==["['ok.ipynb']", '2'], lines
    msgs = '\n'.join(lines[2:])
    assert f"Skipped folder '{c}/locked': permission denied" in msgs
    assert f"'{c}/shut.ipynb' (broken symbolic link)" in msgs and f"'{c}/shut'" not in msgs  # as before links to folders were followed

def test_no_realpath_per_file(tmp_path, monkeypatch):
    "`os.path.realpath` is called once for the folder given and once for each link to a folder, never for each notebook"
    n = tmp_path/'nbs'
    for i in range(200): mk(tmp_path/'ext'/f'g{i%5}'/f'nb{i}.ipynb')
    for i in range(50): mk(n/f'own{i}.ipynb')
    (n/'ext').symlink_to(tmp_path/'ext', target_is_directory=True)
    (n/'again').symlink_to(tmp_path/'ext', target_is_directory=True)
    calls = []
    real = os.path.realpath
    monkeypatch.setattr(os.path, 'realpath', lambda p, *a, **kw: calls.append(p) or real(p, *a, **kw))
    ps = _nb_files(n)
    assert len(ps)==250 and sum(p.startswith(f'{n}/again/') for p in ps)==200  # the first link by name
    assert len(calls)==3, calls

def test_many_links_and_a_ladder_are_linear(tmp_path):
    "5,000 links to one folder, and 30 folders each linking to the next and back to the first: each real folder walked once, quickly"
    n = tmp_path/'nbs'; mk(tmp_path/'shared'/'s.ipynb'); n.mkdir()
    for i in range(5000): (n/f'l{i}').symlink_to(tmp_path/'shared', target_is_directory=True)
    for i in range(30):
        mk(tmp_path/'ladder'/f'f{i}'/f'nb{i}.ipynb')
        (tmp_path/'ladder'/f'f{i}'/'next').symlink_to(f'../f{i+1}' if i<29 else '../f0', target_is_directory=True)
        (tmp_path/'ladder'/f'f{i}'/'first').symlink_to('../f0', target_is_directory=True)
    (n/'ladder').symlink_to(tmp_path/'ladder'/'f0', target_is_directory=True)
    t = time.perf_counter()
    ps = get_nb_paths(n)
    assert time.perf_counter()-t<20
    assert len(ps)==31 and len({os.path.realpath(p) for p in ps})==31
    assert rel(ps, n)[:2]==['l0/s.ipynb', 'ladder/nb0.ipynb']
    assert 'ladder/next/next/nb2.ipynb' in rel(ps, n)

def test_deeper_than_the_kernel_follows(tmp_path):
    "Past 40 links in one path the kernel gives up (`ELOOP`), and so does nbdev's `os.walk`: the walk stops there, without an error"
    for i in range(60):
        mk(tmp_path/'ladder'/f'f{i}'/f'nb{i}.ipynb')
        if i<59: (tmp_path/'ladder'/f'f{i}'/'next').symlink_to(f'../f{i+1}', target_is_directory=True)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        ps = get_nb_paths(tmp_path/'ladder'/'f0')
    assert 30<len(ps)<60 and all(p.exists() for p in ps), len(ps)
    assert not w, [str(o.message) for o in w]

def test_search_through_a_linked_folder(tmp_path):
    "A BM25 search finds a notebook in a linked folder and names it by the path through the link, once"
    from nbsearch.core import rank_nbs
    mk(tmp_path/'course'/'nbs'/'quasar.ipynb', '# Quasar notes\n> how a quasar shines')
    mk(tmp_path/'nbs'/'other.ipynb', '# Other\n> nothing to see')
    (tmp_path/'nbs'/'course').symlink_to('../course/nbs', target_is_directory=True)
    (tmp_path/'nbs'/'more').symlink_to('../course/nbs', target_is_directory=True)
    hs = rank_nbs('quasar', tmp_path/'nbs', model=None, index=False)
    assert [h.title for h in hs if 'Quasar' in h.title]==['Quasar notes']
    assert Path(hs[0].path)==tmp_path/'nbs'/'course'/'quasar.ipynb'
