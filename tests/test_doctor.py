"""`cairn doctor --json` as a user runs it: every check passes on a healthy setup; a missing
model file or an index held by another process fails that check, with its remedy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def doctor(settings, **env) -> tuple[int, dict]:
    environ = os.environ | {"CAIRN_DATA_DIR": str(settings.data_dir), "CAIRN_COLLECTION": settings.collection} | env
    environ.pop("QDRANT_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "cairn", "doctor", "--json"], cwd=REPO, env=environ, capture_output=True, text=True, timeout=600
    )
    return result.returncode, json.loads(result.stdout)


def by_name(report: dict) -> dict[str, dict]:
    return {check["name"]: check for check in report["checks"]}


def test_healthy_setup_passes_every_check(cli_index):
    code, report = doctor(cli_index)
    checks = by_name(report)
    assert [c for c in report["checks"] if c["status"] != "ok"] == []
    assert code == 0 and report["ok"] is True
    assert set(checks) >= {"cpu", "answer model", "generation", "embedding model", "index", "chromium", "disk", "memory"}
    assert checks["index"]["data"]["documents"] > 0 and checks["index"]["data"]["chunks"] > 0
    assert checks["answer model"]["data"]["sha256"].startswith("cc324af0")


def test_a_missing_model_file_fails_with_its_remedy(cli_index, tmp_path):
    code, report = doctor(cli_index, CAIRN_LLM_MODEL_DIR=str(tmp_path / "no-models"))
    checks = by_name(report)
    assert code == 1 and report["ok"] is False
    assert checks["answer model"]["status"] == "failed"
    assert "make llm" in checks["answer model"]["remedy"]
    assert checks["generation"]["status"] == "skipped"
    assert checks["index"]["status"] == "ok"


def test_an_index_held_by_another_process_names_it(cli_index):
    holder_code = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from retrieval.store.edge import EdgeStore
        store = EdgeStore(Path(sys.argv[1]))
        store.count(sys.argv[2])
        print("holding", flush=True)
        time.sleep(600)
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", holder_code, str(cli_index.data_dir), cli_index.collection],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        code, report = doctor(cli_index)
    finally:
        holder.kill()
        holder.wait()
    index = by_name(report)["index"]
    assert code == 1
    assert index["status"] == "failed"
    assert str(holder.pid) in index["detail"] and holder.pid in index["data"]["holders"]
    assert "stop that process" in index["remedy"]


def test_a_packaged_model_that_is_not_the_pinned_file_is_corrupt(tmp_path):
    from answers.model_file import QWEN_CODER_0_5B
    from cairn.doctor import check_answer_model

    path = tmp_path / QWEN_CODER_0_5B.file
    path.write_bytes(b"GGUF, but cut short")
    check = check_answer_model(path)
    assert check.status == "failed" and "corrupt" in check.detail
    assert QWEN_CODER_0_5B.sha256[:12] in check.detail and "make llm" in check.remedy
