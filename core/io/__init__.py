"""Files on disk: where the cache lives, atomic writes, hashes, locks and the run-folder layout. Imports nothing else of core."""

from core._exports import lazy_exports

_EXPORTS = {
    "atomic_write_bytes": "atomic",
    "atomic_write_json": "atomic",
    "sha256_file": "atomic",
    "sha256_file_memo": "atomic",
    "cache_dir": "paths",
    "exclusive": "locks",
    "RunFolder": "run_folder",
    "from_dict": "records",
    "to_dict": "records",
    "RunSpec": "run_folder",
    "SetupChoice": "choice",
    "load_choice": "choice",
    "save_choice": "choice",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
