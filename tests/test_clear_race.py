"`clear()` racing other processes that open and write the same index never leaves an index that nbsearch refuses"
import os, sys, subprocess, textwrap

loop = textwrap.dedent('''
    import sys, time, warnings
    warnings.simplefilter('ignore')
    from nbsearch.index import NbIndex, NotAnIndexError
    p,role,refused,end = sys.argv[1],sys.argv[2],0,time.time()+3
    while time.time()<end:
        try:
            ix = NbIndex(p)
            if role=='clear': ix.clear()
            else: ix._set_meta('x', str(time.time())); ix.close()
        except NotAnIndexError: refused += 1
        except Exception: pass  # SQLite's own errors on a file deleted while open (disk I/O error) are not what this checks
    print(refused)''')

def test_clear_racing_opens(tmp_path):
    p = tmp_path/'ix.db'
    ps = [subprocess.Popen([sys.executable, '-c', loop, str(p), role], stdout=subprocess.PIPE, text=True) for role in ('clear', 'write', 'write')]
    assert [int(o.communicate(timeout=120)[0]) for o in ps]==[0, 0, 0]
    from nbsearch.index import NbIndex
    ix = NbIndex(p); assert ix.db.execute('select count(*) from docs').fetchone()==(0,); ix.close()
