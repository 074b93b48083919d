"""llama.cpp's instruction-set flags, chosen from the CPU that builds it (standard library only:
the Makefile runs this with the system Python before the virtual environment exists).

Why detection and not run-time dispatch: llama.cpp can build every CPU variant and pick one at
load time (``GGML_BACKEND_DL`` + ``GGML_CPU_ALL_VARIANTS``), but llama-cpp-python 0.3.36 does not
call ``ggml_backend_load_all()``, so such a build loads no backend at all ("no backends are
loaded", llama-cpp-python issue #2069). So each flag is switched on only where the CPU reports
it, and every other one is switched off explicitly (ggml turns some on by default):

- never AMX: Intel machines here advertise it and the AMX kernels crash (``GGML_NATIVE`` stays
  off for the same reason: a native build enables it);
- ``GGML_AVX_VNNI`` (the VEX form) only with ``avx_vnni``: AMD Zen 4 has ``avx512_vnni`` but not
  it, and a build with it dies with SIGILL at the first token.

``portable`` (the Docker image's default) limits the choice to x86-64-v3 (AVX2, FMA, F16C, BMI2),
which every x86-64 server of the last decade runs; ``native`` uses all that this CPU has.

    python3 -m cairn.llama_build cmake-args [--target native|portable] [--cpuinfo PATH]
    python3 -m cairn.llama_build record FILE [--target ...]   (rewrites FILE only when it changes)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# ggml's CMake option -> the /proc/cpuinfo flag the CPU must report for it.
GGML_OPTION_FLAG: dict[str, str] = {
    "GGML_SSE42": "sse4_2",
    "GGML_AVX": "avx",
    "GGML_AVX2": "avx2",
    "GGML_FMA": "fma",
    "GGML_F16C": "f16c",
    "GGML_BMI2": "bmi2",
    "GGML_AVX_VNNI": "avx_vnni",
    "GGML_AVX512": "avx512f",
    "GGML_AVX512_VBMI": "avx512vbmi",
    "GGML_AVX512_VNNI": "avx512_vnni",
    "GGML_AVX512_BF16": "avx512_bf16",
}
# AVX-512 sub-options are meaningless without the foundation.
_NEEDS_AVX512 = {"GGML_AVX512_VBMI", "GGML_AVX512_VNNI", "GGML_AVX512_BF16"}
PORTABLE_OPTIONS = frozenset({"GGML_SSE42", "GGML_AVX", "GGML_AVX2", "GGML_FMA", "GGML_F16C", "GGML_BMI2"})
# Switched off whatever the CPU says (see the module docstring).
ALWAYS_OFF = ("GGML_NATIVE", "GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16")
TARGETS = ("native", "portable")


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The instruction-set flags of the first CPU in a /proc/cpuinfo text (empty off x86)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def chosen_options(flags: frozenset[str], target: str = "native") -> frozenset[str]:
    """The ggml options to switch on for a CPU with ``flags``: each only where its flag is there."""
    if target not in TARGETS:
        raise ValueError(f"unknown llama.cpp target {target!r}: use one of {', '.join(TARGETS)}")
    options = {option for option, flag in GGML_OPTION_FLAG.items() if flag in flags}
    if "GGML_AVX512" not in options:
        options -= _NEEDS_AVX512
    if target == "portable":
        options &= PORTABLE_OPTIONS
    return frozenset(options)


def cmake_args(flags: frozenset[str], target: str = "native") -> list[str]:
    """CMake arguments for llama.cpp: every option named explicitly ON or OFF."""
    on = chosen_options(flags, target)
    args = [f"-D{option}=OFF" for option in ALWAYS_OFF]
    if not flags:  # not x86 (or no flags line): let ggml pick its own portable defaults
        return args[:1]
    args += [f"-D{option}={'ON' if option in on else 'OFF'}" for option in GGML_OPTION_FLAG]
    return args


def options_in(args: str) -> frozenset[str]:
    """The ggml options a recorded argument line switched on."""
    return frozenset(
        word[2:].split("=")[0] for word in args.split() if word.startswith("-DGGML_") and word.endswith("=ON")
    )


def missing_instructions(build_args: str, flags: frozenset[str]) -> list[str]:
    """CPU flags a build needs that this CPU lacks (a build made elsewhere), sorted."""
    return sorted(
        GGML_OPTION_FLAG[option]
        for option in options_in(build_args)
        if option in GGML_OPTION_FLAG and GGML_OPTION_FLAG[option] not in flags
    )


def read_cpuinfo(path: Path = Path("/proc/cpuinfo")) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m cairn.llama_build", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["cmake-args", "record"])
    parser.add_argument("file", nargs="?", type=Path, help="for record: the build record to (re)write")
    parser.add_argument("--target", default="native", choices=TARGETS)
    parser.add_argument("--cpuinfo", type=Path, default=Path("/proc/cpuinfo"))
    args = parser.parse_args(argv)
    line = " ".join(cmake_args(cpu_flags(read_cpuinfo(args.cpuinfo)), args.target))
    if args.command == "cmake-args":
        print(line)
        return 0
    if args.file is None:
        parser.error("record needs the FILE to write")
    # Only a change touches the file, so make rebuilds exactly when the flag set moved.
    current = args.file.read_text().strip() if args.file.is_file() else None
    if current != line:
        args.file.parent.mkdir(parents=True, exist_ok=True)
        args.file.write_text(line + "\n")
        print(f"llama.cpp build flags for this CPU: {line}" + (" (changed: rebuilding)" if current else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
