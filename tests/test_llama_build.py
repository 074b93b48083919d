"""llama.cpp's instruction-set flags are chosen from the CPU's own flags line: never AMX, the
VEX AVX-VNNI only where the CPU has it, nothing the CPU lacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn import doctor, llama_build

INTEL_AMX = (
    "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu sse4_2 fma avx f16c bmi1 avx2 bmi2 "
    "avx512f avx512dq avx512ifma avx512cd avx512bw avx512vl avx_vnni avx512_bf16 avx512vbmi avx512_vbmi2 "
    "avx512_vnni avx512_bitalg avx512_vpopcntdq amx_bf16 avx512_fp16 amx_tile amx_int8\n"
)
AMD_EPYC = (
    "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse4_2 fma avx f16c bmi1 avx2 bmi2 avx512f avx512dq "
    "avx512ifma avx512cd avx512bw avx512vl avx512_bf16 avx512vbmi avx512_vbmi2 avx512_vnni avx512_bitalg "
    "avx512_vpopcntdq\n"
)
OLD_AVX2 = "flags\t\t: fpu sse4_2 fma avx f16c bmi1 avx2 bmi2\n"
THIS_MACHINE = llama_build.read_cpuinfo()


def _on(args: list[str]) -> set[str]:
    return {a[2:-3] for a in args if a.endswith("=ON")}


@pytest.mark.parametrize("cpuinfo", [INTEL_AMX, AMD_EPYC, OLD_AVX2, THIS_MACHINE], ids=["intel-amx", "amd-epyc", "avx2", "this-machine"])
@pytest.mark.parametrize("target", llama_build.TARGETS)
def test_every_chosen_flag_is_one_the_cpu_has_and_never_amx(cpuinfo, target):
    flags = llama_build.cpu_flags(cpuinfo)
    args = llama_build.cmake_args(flags, target)
    on = _on(args)
    assert not any("AMX" in option for option in on)
    assert "-DGGML_NATIVE=OFF" in args
    for option in on:
        assert llama_build.GGML_OPTION_FLAG[option] in flags, option
    assert llama_build.missing_instructions(" ".join(args), flags) == []


def test_avx_vnni_only_where_the_cpu_reports_it():
    intel = _on(llama_build.cmake_args(llama_build.cpu_flags(INTEL_AMX)))
    amd = _on(llama_build.cmake_args(llama_build.cpu_flags(AMD_EPYC)))
    assert "GGML_AVX_VNNI" in intel
    assert "GGML_AVX_VNNI" not in amd
    assert "-DGGML_AVX_VNNI=OFF" in llama_build.cmake_args(llama_build.cpu_flags(AMD_EPYC))
    # AMD keeps its AVX-512 family, including the EVEX VNNI and BF16.
    assert {"GGML_AVX512", "GGML_AVX512_VNNI", "GGML_AVX512_BF16", "GGML_AVX512_VBMI"} <= amd
    for amx in ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16"):
        assert f"-D{amx}=OFF" in llama_build.cmake_args(llama_build.cpu_flags(INTEL_AMX))


def test_portable_is_x86_64_v3_and_no_avx512():
    on = _on(llama_build.cmake_args(llama_build.cpu_flags(INTEL_AMX), "portable"))
    assert on == {"GGML_SSE42", "GGML_AVX", "GGML_AVX2", "GGML_FMA", "GGML_F16C", "GGML_BMI2"}


def test_a_build_made_on_intel_is_flagged_on_amd():
    intel_build = " ".join(llama_build.cmake_args(llama_build.cpu_flags(INTEL_AMX)))
    assert llama_build.missing_instructions(intel_build, llama_build.cpu_flags(AMD_EPYC)) == ["avx_vnni"]


def test_no_flags_line_leaves_the_defaults():
    assert llama_build.cmake_args(frozenset()) == ["-DGGML_NATIVE=OFF"]


def test_record_rewrites_only_on_change(tmp_path: Path):
    cpuinfo, record = tmp_path / "cpuinfo", tmp_path / "build"
    cpuinfo.write_text(AMD_EPYC)
    assert llama_build.main(["record", str(record), "--cpuinfo", str(cpuinfo)]) == 0
    first = record.stat().st_mtime_ns
    assert llama_build.main(["record", str(record), "--cpuinfo", str(cpuinfo)]) == 0
    assert record.stat().st_mtime_ns == first
    cpuinfo.write_text(INTEL_AMX)
    llama_build.main(["record", str(record), "--cpuinfo", str(cpuinfo)])
    assert "-DGGML_AVX_VNNI=ON" in record.read_text()


def test_doctor_cpu_check_fails_for_a_build_from_another_cpu(tmp_path: Path):
    record = tmp_path / "build"
    record.write_text(" ".join(llama_build.cmake_args(llama_build.cpu_flags(INTEL_AMX))))
    check = doctor.check_cpu(AMD_EPYC, record)
    assert check.status == "failed"
    assert "avx_vnni" in check.detail and check.remedy == "run `make rebuild-llm`"
    assert doctor.check_cpu(INTEL_AMX, record).status == "ok"


def test_a_generation_that_dies_by_signal_is_named_with_its_remedy(tmp_path: Path):
    """A child killed by SIGILL (what a build for another CPU does) is one plain line, not a crash."""
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    crashing = tmp_path / "python"
    crashing.write_text("#!/bin/sh\nkill -ILL $$\n")
    crashing.chmod(0o755)
    check = doctor.check_generation(model, python=str(crashing))
    assert check.status == "failed"
    assert "SIGILL" in check.detail and "another CPU" in check.detail
    assert check.remedy == "run `make rebuild-llm`"


def test_the_makefile_and_the_image_use_the_detection_and_hard_code_no_flag():
    repo = Path(__file__).resolve().parent.parent
    makefile, dockerfile = (repo / "Makefile").read_text(), (repo / "Dockerfile").read_text()
    assert "-DGGML_" not in makefile and "-DGGML_" not in dockerfile
    assert "python3 -m cairn.llama_build record" in makefile
    assert "ARG LLAMA_TARGET=portable" in dockerfile
