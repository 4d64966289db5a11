"""dreamscope studio: a local web app over the job runner (design and HTTP API: docs/studio.md).

The studio needs the `studio` extra (FastAPI, uvicorn, python-multipart). Importing this package checks that
they are installed, without importing them, so a missing one is a single error that says how to install it;
the parts themselves load on first use.
"""

from __future__ import annotations

import importlib
import importlib.util

from ..errors import DreamscopeError

INSTALL = "pip install -e '.[studio]'"
NEEDED = {"fastapi": "fastapi", "uvicorn": "uvicorn", "python_multipart": "python-multipart"}


def _check_installed() -> None:
    missing = [package for module, package in NEEDED.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise DreamscopeError(f"dreamscope studio needs {', '.join(missing)}, not installed here; run: {INSTALL}")


_check_installed()

_EXPORTS = {"create_app": "app", "Studio": "app", "serve": "server", "default_data_folder": "server"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dreamscope.studio' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
