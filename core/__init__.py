"""Convexity Lab core: everything the dashboard and the CLI do, importable without Streamlit."""

import os as _os

from core.io.paths import numba_cache_dir as _numba_cache_dir

if "NUMBA_CACHE_DIR" not in _os.environ and (_where := _numba_cache_dir()) is not None:
    _os.environ["NUMBA_CACHE_DIR"] = str(_where)  # read when numba is first imported
