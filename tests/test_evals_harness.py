"""The whole harness on the tiny set (tests/fixtures_evals.py): real ingest, real search
service, real llama-index baseline; scores checked against the values worked out by hand."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cairn.cli import app
from evals.index_cache import MARKER, IndexCache
from evals.report import METRICS_CHART, RESULTS_FILE, WINS_CHART, write_report

PNG = b"\x89PNG\r\n\x1a\n"


def test_bm25_scores_match_the_hand_computed_values(tiny_run):
    run = tiny_run[0]
    bm25 = run.result("bm25")
    # q1 and q2: every relevant file at the top; q3: BM25 finds nothing.
    for metric in ("ndcg@10", "mrr@10", "recall@10", "recall@100"):
        assert bm25.per_query[metric] == pytest.approx({"q1": 1.0, "q2": 1.0, "q3": 0.0}), metric
        assert bm25.means[metric] == pytest.approx(2 / 3)
    assert bm25.rankings["q3"] == []
    assert bm25.rankings["q2"][:2] and set(bm25.rankings["q2"][:2]) == {
        "policies/vacation.md",
        "policies/vacation-2023.md",
    }
    assert bm25.per_query["passage_hit@10"] == {"q1": 1.0, "q2": 1.0, "q3": 0.0}
    assert bm25.per_query["context_recall"] == pytest.approx({"q1": 1.0, "q2": 1.0, "q3": 0.0})


def test_dense_rows_see_every_file(tiny_run):
    run = tiny_run[0]
    for name in ("dense", "hybrid-rrf", "llamaindex-default"):
        result = run.result(name)
        assert result.means["recall@10"] == 1.0, name
        assert result.rankings["q1"][0] == "travel/expenses.txt", name
    assert run.result("dense").per_query["passage_hit@10"] == {"q1": 1.0, "q2": 1.0, "q3": 1.0}


def test_every_row_has_latency_and_the_default_is_the_reference(tiny_run):
    run = tiny_run[0]
    assert run.reference == "hybrid-rrf"
    assert set(run.significance) == {r.config.name for r in run.results} - {"hybrid-rrf"}
    for result in run.results:
        assert result.latency_ms["total"]["p95"] >= result.latency_ms["total"]["p50"] > 0
    assert {"encode", "search", "assemble"} <= set(run.result("hybrid-rrf").latency_ms)


def test_an_ingest_setting_gets_its_own_cached_index_and_both_are_reused(tiny_run):
    run, runner, evalset, configs = tiny_run
    default_index, small_index = run.result("hybrid-rrf").index, run.result("small-chunks").index
    assert run.result("bm25").index.key == default_index.key
    assert small_index.key != default_index.key
    assert small_index.chunks > default_index.chunks  # smaller chunks, more of them
    for index in (default_index, small_index):
        assert (runner.cache.root / f"tiny-{index.key}" / MARKER).exists()

    again = runner.run(evalset, [c for c in configs if c.kind == "cairn"], run.reference)
    assert again.result("hybrid-rrf").index.reused and again.result("small-chunks").index.reused
    assert again.result("bm25").means == run.result("bm25").means


def test_a_changed_corpus_gets_a_new_index(tiny_run, tmp_path):
    run, runner, evalset, _ = tiny_run
    from evals.dataset import corpus_hash

    digest = corpus_hash(evalset.corpus_dir)
    settings = runner.settings
    assert (
        IndexCache(runner.cache.root).folder_for(evalset, digest, settings).name
        == f"tiny-{run.result('bm25').index.key}"
    )
    assert (
        IndexCache(runner.cache.root).folder_for(evalset, "0" * 64, settings).name
        != f"tiny-{run.result('bm25').index.key}"
    )


def test_the_report_is_written(tiny_run, tmp_path):
    run = tiny_run[0]
    written = write_report(run, tmp_path / "report", "cairn eval tiny")
    text = written.report.read_text()
    assert "| hybrid-rrf (default) |" in text
    assert "| bm25 | 0.667" in text
    assert "`cairn eval tiny`" in text and run.corpus_hash in text
    assert "llama-index-core" in text
    results = json.loads(written.results.read_text())
    bm25 = next(c for c in results["configs"] if c["name"] == "bm25")
    assert (
        bm25["per_query"]["q3"]["ndcg@10"] == 0.0 and bm25["per_query"]["q1"]["top_files"][0] == "travel/expenses.txt"
    )
    assert bm25["vs_reference"]["recall@10"]["delta"] == pytest.approx(-1 / 3)
    assert [p.name for p in written.charts] == [METRICS_CHART, WINS_CHART]
    for chart in written.charts:
        assert chart.read_bytes().startswith(PNG)


def test_a_hand_written_tuning_note_is_kept_in_the_report(tiny_run, tmp_path):
    out = tmp_path / "with-notes"
    out.mkdir()
    (out / "tuning.md").write_text("Tried rrf_k=10: worse.\n")
    write_report(tiny_run[0], out, "cairn eval tiny")
    assert "## Tuning\n\nTried rrf_k=10: worse." in (out / "report.md").read_text()


def test_the_cli_prints_the_table_and_writes_the_report(tiny_run, tiny_set_dir, eval_cache_root, tmp_path, monkeypatch):
    monkeypatch.setenv("CAIRN_RERANKER", "none")
    from retrieval.settings import get_settings

    get_settings.cache_clear()
    monkeypatch.chdir(tmp_path)  # the default report folder is relative to the working directory
    args = ["eval", str(tiny_set_dir), "--only", "bm25", "--no-baseline", "--config", "wide:prefetch_limit=80"]
    result = CliRunner().invoke(app, [*args, "--cache", str(eval_cache_root)])
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "bm25" in result.output and "wide" in result.output and "0.667" in result.output
    # a partial run (--only, --no-baseline) never replaces the committed report
    out = tmp_path / "evals/runs/tiny"
    assert not (tmp_path / "evals/reports").exists()
    assert (out / "report.md").exists() and (out / RESULTS_FILE).exists()
    assert "cairn eval" in (out / "report.md").read_text()
    assert "--only bm25 --no-baseline" in (out / "report.md").read_text()


def test_the_cli_names_a_bad_set(tmp_path):
    result = CliRunner().invoke(app, ["eval", str(tmp_path)])
    assert result.exit_code == 2
    assert "corpus" in result.output


def test_the_llamaindex_baseline_is_saved_and_reused(tiny_run):
    from evals.baseline_llamaindex import LlamaIndexBaseline, baseline_folder, parsed_corpus
    from evals.dataset import corpus_hash

    run, runner, evalset, _ = tiny_run
    digest = corpus_hash(evalset.corpus_dir)
    folder = baseline_folder(runner.cache.root, evalset, digest, runner.settings)
    assert folder.is_dir()
    corpus = parsed_corpus(evalset, digest, runner.settings, runner.cache.root)
    assert sorted(corpus.texts) == [
        "kitchen/sourdough.md",
        "policies/vacation-2023.md",
        "policies/vacation.md",
        "travel/expenses.txt",
    ]
    reloaded = LlamaIndexBaseline(corpus, runner.settings, folder)
    assert reloaded.loaded and reloaded.nodes == 4  # one node per small file
    outcome = reloaded.retrieve("q1", "What is the daily meal allowance abroad?", depth=100, top_k=10)
    assert outcome.ranked_paths == run.result("llamaindex-default").rankings["q1"]
