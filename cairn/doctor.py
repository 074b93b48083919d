"""`cairn doctor`: what a user needs to know when something is off, each failed check with what
to do. `make setup` ends with `python -m cairn.doctor --setup` (build, models, a real generation
in a child process), so a build that does not fit the CPU fails setup in one line, not the tests
or the chat minutes later.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import psutil
from pydantic import BaseModel

from cairn import llama_build

MIN_FREE_DISK_BYTES = 2 * 1024**3  # an ingest, the answer model's KV cache and pip's builds
MIN_FREE_MEMORY_BYTES = 3 * 1024**3  # the answer model (1.1 GB) + two embedding models + the engine
GENERATION_TIMEOUT_S = 180


class Check(BaseModel):
    name: str
    status: Literal["ok", "failed", "skipped"]
    detail: str
    remedy: str | None = None  # set when failed: the command or setting that fixes it
    data: dict[str, object] = {}


def _ok(name: str, detail: str, **data: object) -> Check:
    return Check(name=name, status="ok", detail=detail, data=data)


def _failed(name: str, detail: str, remedy: str, **data: object) -> Check:
    return Check(name=name, status="failed", detail=detail, remedy=remedy, data=data)


def llama_build_record() -> Path:
    """Where `make setup` recorded the CMake flags of the installed llama.cpp."""
    return Path(sys.prefix) / ".llama-build"


def check_cpu(cpuinfo: str | None = None, record: Path | None = None) -> Check:
    flags = llama_build.cpu_flags(llama_build.read_cpuinfo() if cpuinfo is None else cpuinfo)
    wanted = sorted(llama_build.chosen_options(flags)) if flags else []
    record = record or llama_build_record()
    if not record.is_file():
        return _failed(
            "cpu", f"no llama.cpp build record at {record}; this CPU wants {', '.join(wanted) or 'the defaults'}",
            "run `make setup` (it builds llama.cpp for this CPU)", cpu_options=wanted,
        )
    built = record.read_text().strip()
    missing = llama_build.missing_instructions(built, flags)
    amx = sorted(o for o in llama_build.options_in(built) if "AMX" in o)
    data = {"build_options": sorted(llama_build.options_in(built)), "cpu_options": wanted}
    if missing or amx:
        why = f"the CPU lacks {', '.join(missing)}" if missing else f"AMX is enabled ({', '.join(amx)})"
        return _failed(
            "cpu", f"llama.cpp was built for another CPU: {why}; generation would crash (SIGILL)",
            "run `make rebuild-llm`", **data,
        )
    return _ok("cpu", f"llama.cpp built with {', '.join(data['build_options'])}; all supported by this CPU", **data)


def _sha256(path: Path) -> str:
    from retrieval.model_sources import sha256_of

    return sha256_of(path)


def check_answer_model(model_path: Path) -> Check:
    from answers.model_file import PACKAGED_MODELS

    if not model_path.is_file():
        return _failed("answer model", f"{model_path} is missing", "run `make llm` (it assembles the model)")
    digest = _sha256(model_path)
    known = PACKAGED_MODELS.get(model_path.name)
    if known is not None and digest != known.sha256:
        return _failed(
            "answer model", f"{model_path} is corrupt: sha256 {digest[:12]}..., expected {known.sha256[:12]}...",
            f"delete {model_path} and run `make llm`", path=str(model_path), sha256=digest,
        )
    return _ok("answer model", f"{model_path} sha256 {digest[:12]}...", path=str(model_path), sha256=digest)


def _weights(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file())


def check_embedding_model(label: str, name: str) -> Check:
    from retrieval.model_sources import ModelAssemblyError, resolve_model

    try:
        resolved = Path(resolve_model(name))
    except ModelAssemblyError as exc:
        return _failed(label, str(exc), "run `make setup`")
    if not resolved.is_dir() or not _weights(resolved):
        return _failed(label, f"{name} has no local copy (offline it cannot be downloaded)", "run `make setup`")
    hashes = {p.name: _sha256(p) for p in _weights(resolved)}
    shown = ", ".join(f"{n} sha256 {h[:12]}..." for n, h in hashes.items())
    return _ok(label, f"{name} at {resolved}: {shown}", path=str(resolved), sha256=hashes)


# Run in a child: a build that does not fit the CPU kills the process with a signal.
_GENERATE = """
import sys
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=256, n_threads=2, verbose=False)
out = llm.create_completion("The capital of France is", max_tokens=4, temperature=0.0)
print(repr(out["choices"][0]["text"]))
"""


def check_generation(model_path: Path, python: str = sys.executable) -> Check:
    if not model_path.is_file():
        return Check(name="generation", status="skipped", detail=f"{model_path} is missing")
    try:
        child = subprocess.run(
            [python, "-c", _GENERATE, str(model_path)], capture_output=True, text=True, timeout=GENERATION_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return _failed(
            "generation", f"the answer model wrote nothing in {GENERATION_TIMEOUT_S} s", "check the machine's load, then `make rebuild-llm`"
        )
    if child.returncode < 0:
        name = signal.Signals(-child.returncode).name
        what = " (illegal instruction: built for another CPU)" if name == "SIGILL" else ""
        return _failed(
            "generation", f"llama.cpp crashed with {name}{what} while generating with {model_path.name}",
            "run `make rebuild-llm`", signal=name,
        )
    if child.returncode != 0:
        last = (child.stderr.strip().splitlines() or ["no output"])[-1]
        return _failed("generation", f"the answer model failed to load or generate: {last}", "run `make setup`")
    return _ok("generation", f"{model_path.name} loaded and wrote {child.stdout.strip()}")


def index_holders(data_dir: Path) -> list[int]:
    """PIDs of other processes with a file open under the embedded index (Linux /proc)."""
    root = str(data_dir.resolve())
    holders = []
    for pid in psutil.pids():
        if pid == os.getpid():
            continue
        try:
            fds = Path(f"/proc/{pid}/fd").iterdir()
            if any(os.readlink(fd).startswith(root + os.sep) for fd in fds):
                holders.append(pid)
        except OSError:
            continue
    return holders


def check_index(settings) -> Check:
    from retrieval.index_schema import files_collection
    from retrieval.store import IndexLockedError, StoreError, open_store

    backend = "server" if settings.uses_server else "embedded"
    where = settings.qdrant_url if settings.uses_server else str(settings.data_dir)
    try:
        store = open_store(settings.storage)
        try:
            if not store.collection_exists(settings.collection):
                return _failed(
                    "index", f"{backend} index at {where} has no collection '{settings.collection}'",
                    "run `cairn ingest FOLDER` (or `make ingest-sample`)", backend=backend,
                )
            chunks = store.count(settings.collection)
            files = files_collection(settings.collection)
            documents = store.count(files) if store.collection_exists(files) else 0
        finally:
            store.close()
    except IndexLockedError:
        pids = index_holders(settings.data_dir)
        held = f"process {', '.join(map(str, pids))}" if pids else "another process"
        return _failed(
            "index", f"{backend} index at {where} is held by {held}",
            "stop that process (`cairn ui` or `cairn serve`), or set QDRANT_URL to share a Qdrant server",
            backend=backend, holders=pids,
        )
    except StoreError as exc:
        return _failed("index", f"{backend} index at {where}: {exc}", "see the message; `cairn ingest FOLDER` creates an index")
    return _ok(
        "index", f"{backend} index at {where}, collection '{settings.collection}': {documents} documents, {chunks} chunks",
        backend=backend, collection=settings.collection, documents=documents, chunks=chunks,
    )


def check_chromium() -> Check:
    path = shutil.which("chromium")
    if path is None:
        return _failed("chromium", "Debian's chromium is not installed (the browser tests need it)", "run `make setup`")
    return _ok("chromium", path)


def check_disk(path: Path) -> Check:
    probe = path if path.exists() else Path.cwd()
    free = shutil.disk_usage(probe).free
    detail = f"{free / 1024**3:.1f} GiB free at {probe}"
    if free < MIN_FREE_DISK_BYTES:
        return _failed("disk", detail, f"free at least {MIN_FREE_DISK_BYTES // 1024**3} GiB", free_bytes=free)
    return _ok("disk", detail, free_bytes=free)


def check_memory() -> Check:
    available = psutil.virtual_memory().available
    detail = f"{available / 1024**3:.1f} GiB available"
    if available < MIN_FREE_MEMORY_BYTES:
        return _failed(
            "memory", detail, f"free at least {MIN_FREE_MEMORY_BYTES // 1024**3} GiB (stop other model processes)",
            available_bytes=available,
        )
    return _ok("memory", detail, available_bytes=available)


def run_checks(settings, setup_only: bool = False) -> list[Check]:
    """The checks in order; `setup_only`: what `make setup` must prove before it succeeds."""
    model_path = settings.llm_model_dir / settings.llm_local_model
    checks: list[Callable[[], Check]] = [
        check_cpu,
        lambda: check_answer_model(model_path),
        lambda: check_generation(model_path),
    ]
    if not setup_only:
        checks += [
            lambda: check_embedding_model("embedding model", settings.embedding_model),
            *(
                [lambda: check_embedding_model("reranker model", settings.reranker_embedding_model)]
                if settings.reranker_embedding_model
                else []
            ),
            lambda: check_index(settings),
            check_chromium,
            lambda: check_disk(settings.data_dir),
            check_memory,
        ]
    return [check() for check in checks]


def report_lines(checks: list[Check]) -> list[str]:
    lines = []
    for check in checks:
        line = f"{check.status:7} {check.name}: {check.detail}"
        if check.remedy:
            line += f" -> {check.remedy}"
        lines.append(line)
    return lines


def as_json(checks: list[Check]) -> str:
    return json.dumps({"ok": all(c.status != "failed" for c in checks), "checks": [c.model_dump() for c in checks]})


def main(argv: list[str] | None = None) -> int:
    """`python -m cairn.doctor --setup`: the end of `make setup` (no typer or rich needed)."""
    from retrieval.process_env import configure_process_env
    from retrieval.settings import get_settings

    configure_process_env()
    argv = sys.argv[1:] if argv is None else argv
    checks = run_checks(get_settings(), setup_only="--setup" in argv)
    failed = [c for c in checks if c.status == "failed"]
    for line in report_lines(failed if "--setup" in argv else checks):
        print(("setup check failed: " if "--setup" in argv else "") + line, file=sys.stderr if failed else sys.stdout)
    if "--setup" in argv and not failed:
        print("setup check: " + "; ".join(f"{c.name} ok" for c in checks))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
