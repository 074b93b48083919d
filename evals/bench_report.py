"""The speed report under ``evals/reports/bench/``, gathered from one section per benchmark.

Each benchmark (`cairn bench ingest`, `cairn bench search`, ...) saves its section as
``<name>.json`` (title, markdown, data, date, command); `report.md` and `results.json` are
rebuilt from every saved section, so benchmarks can be re-run one at a time.
"""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

from evals.report import package_versions

DEFAULT_BENCH_DIR = Path("evals/reports/bench")
SECTION_ORDER = ("ingest", "search", "answer")  # others follow in name order


def save_section(out_dir: Path, name: str, title: str, markdown: str, data: dict[str, Any], command: str) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    section = {
        "name": name,
        "title": title,
        "markdown": markdown,
        "data": data,
        "command": command,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    path.write_text(json.dumps(section, indent=1, default=str), encoding="utf-8")
    return path


def _sections(out_dir: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted(out_dir.glob("*.json")):
        if path.name == "results.json":
            continue
        found.append(json.loads(path.read_text(encoding="utf-8")))
    rank = {name: i for i, name in enumerate(SECTION_ORDER)}
    return sorted(found, key=lambda s: (rank.get(s["name"], len(rank)), s["name"]))


def machine() -> str:
    memory_gb = psutil.virtual_memory().total / 2**30
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {psutil.cpu_count()} CPUs, {memory_gb:.0f} GiB RAM, Python {platform.python_version()}"


def rebuild(out_dir: Path) -> Path:
    """report.md and results.json from every saved section."""
    out_dir = Path(out_dir)
    sections = _sections(out_dir)
    lines = ["# Cairn speed benchmarks", "", f"- Machine: {machine()}", ""]
    for section in sections:
        lines += [
            f"## {section['title']}",
            "",
            f"Measured {section['date']} with `{section['command']}`.",
            "",
            section["markdown"].strip(),
            "",
        ]
    versions = package_versions()
    lines += ["## Versions", "", "| package | version |", "|---|---|"] + [f"| {k} | {v} |" for k, v in versions.items()]
    report = out_dir / "report.md"
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    results = {"machine": machine(), "versions": versions, "sections": {s["name"]: s for s in sections}}
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    return report


def throughput_chart(path: Path, labels: list[str], values: list[float], title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(labels, values, color=["#1565c0", "#90caf9"][: len(values)] or None)
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.0f}", ha="center", va="bottom")
    ax.set_ylabel("chunks / s")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
