"""The one command line, ``python -m core``: ``main`` assembles the command modules' ``register`` calls."""

from core._exports import lazy_exports

_EXPORTS = {
    "COMMAND_MODULES": "main",
    "build_parser": "main",
    "main": "main",
    "config_from_args": "options",
    "config_options": "options",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
