"""The one command line, ``python -m core``."""

from core._exports import lazy_exports

_EXPORTS = {
    "build_parser": "jobs",
    "main": "jobs",
    "cmd_models": "main",
    "cmd_datasets": "main",
    "cmd_extract": "main",
    "cmd_convexity": "main",
    "cmd_criteria": "main",
    "cmd_euclidean": "main",
    "cmd_download": "main",
    "cmd_prune": "main",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
