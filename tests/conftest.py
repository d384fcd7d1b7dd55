import os
os.environ.setdefault('HF_HUB_OFFLINE', '1')  # tests never wait on the Hugging Face hub

import sys, shutil, subprocess, tempfile
from pathlib import Path
import pytest

@pytest.fixture
def open_tmp():
    "A temporary folder that another user can enter (pytest's own are private to the user running it)"
    d = Path(tempfile.mkdtemp(prefix='nbsearch-test-'))
    os.chmod(d, 0o755)
    yield d
    for p in [d, *d.rglob('*')]:
        if not p.is_symlink(): os.chmod(p, 0o755 if p.is_dir() else 0o644)
    shutil.rmtree(d)

def as_other_user(code, env=None):
    "Run `code` where file permissions apply: as ourselves, or, as root, without root's power to override them"
    pre = []
    if os.geteuid()==0:
        if not shutil.which('setpriv'): pytest.skip('running as root, and setpriv is not here to drop the permission override')
        pre = ['setpriv', '--bounding-set', '-dac_override,-dac_read_search']
    return subprocess.run(pre+[sys.executable, '-c', code], capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})
