"""`cairn bench ingest` pieces on the tiny corpus: what is measured, and the report it feeds."""

from __future__ import annotations

import json

from evals.bench_ingest import as_dict, bench_ingest, markdown
from evals.bench_report import rebuild, save_section
from retrieval.settings import Settings


def test_ingest_bench_measures_the_pipeline_and_the_embedding_on_the_same_chunks(tiny_set_dir, encoders, tmp_path):
    dense, _ = encoders
    bench = bench_ingest(tiny_set_dir / "corpus", Settings(), dense=dense)
    assert bench.files == 4 and bench.failed_files == 0
    assert bench.chunks == 6  # every chunk the pipeline embedded, embedded again alone
    assert bench.pipeline_chunks_per_s > 0 and bench.embedding_chunks_per_s > 0
    assert bench.throughput_ratio > 0
    assert 0 < bench.rerun_share and bench.peak_rss_mb > 100  # the model alone takes more
    assert bench.peak_rss_parser_mb > 50  # a parser worker with unstructured loaded

    out = tmp_path / "bench"
    save_section(out, "ingest", "Ingest throughput", markdown(bench), as_dict(bench), "cairn bench ingest corpus")
    save_section(
        out, "search", "Query latency", "| n | p50 |\n|---|---|\n| 10k | 1 ms |", {"p50": 1}, "cairn bench search"
    )
    report = rebuild(out).read_text()
    assert report.index("## Ingest throughput") < report.index("## Query latency")
    assert "throughput ratio (pipeline / embedding)" in report and "`cairn bench ingest corpus`" in report
    results = json.loads((out / "results.json").read_text())
    assert results["sections"]["ingest"]["data"]["chunks"] == 6
