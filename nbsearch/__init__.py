__version__ = "0.0.1"

def load_ipython_extension(ip):
    "`%load_ext nbsearch`: adds the `%nbsearch` line magic (imported only then, so `import nbsearch` stays light)"
    from .magic import load_ipython_extension as _load
    _load(ip)
