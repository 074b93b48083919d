"""The one content hash: sha256 of a file read in blocks (model files, ingested documents)."""

from __future__ import annotations

import hashlib
from typing import BinaryIO

_BLOCK = 8 * 1024 * 1024


def sha256_of_stream(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    while block := handle.read(_BLOCK):
        digest.update(block)
    return digest.hexdigest()
