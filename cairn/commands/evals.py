"""`cairn eval SET_DIR` (retrieval quality) and `cairn bench ...` (speed)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cairn.exit_codes import ExitCode

err = Console(stderr=True)
bench_app = typer.Typer(no_args_is_help=True, help="Speed benchmarks, gathered into evals/reports/bench/.")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
    )


def eval_command(
    set_dir: Path = typer.Argument(..., help="Set folder: corpus/, queries.jsonl, qrels.jsonl."),
    config: list[str] = typer.Option(
        [],
        "--config",
        help="Extra row NAME:key=value,... over the default (settings such as chunk_tokens, "
        "chunk_overlap, prefetch_limit, rrf_k, rrf_dense_weight, fusion, context_token_budget; or mode, rerank; "
        "kind=llamaindex runs the baseline under these settings, e.g. another embedding_model). Repeatable.",
    ),
    out: Optional[Path] = typer.Option(
        None,
        "--out",
        help="Report folder (default: evals/reports/<set>/ for a full run, evals/runs/<set>/ with --only, --limit, "
        "--no-baseline, --reference or --depth).",
    ),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N queries (a quick check)."),
    depth: int = typer.Option(
        100, "--depth", min=10, max=1000, help="Chunks fetched per query for the document metrics."
    ),
    only: list[str] = typer.Option([], "--only", help="Run just these built-in rows (repeatable); default: all."),
    baseline: bool = typer.Option(True, "--baseline/--no-baseline", help="Include the llama-index baseline."),
    reference: Optional[str] = typer.Option(
        None, "--reference", help="Row to test the others against (default: Cairn's default)."
    ),
    cache: Path = typer.Option(Path(".cache/evals"), "--cache", help="Where indexed eval corpora are kept."),
    answers: int = typer.Option(
        0, "--answers", min=0, help="Also generate cited answers for N questions (a fixed sample) and score them."
    ),
    answers_seed: int = typer.Option(13, "--answers-seed", help="Seed of the answer eval's sample of questions."),
    answers_only: bool = typer.Option(
        False, "--answers-only", help="Run only the answer eval (no retrieval rows), into answers.md."
    ),
) -> None:
    """Measure retrieval on a labelled set: every configuration side by side, with significance,
    written to report.md, results.json and charts; with --answers N, also the answers."""
    from evals.configs import ConfigError, builtin_configs, parse_config, reference_name
    from evals.dataset import EvalSetError, load_eval_set
    from evals.index_cache import IndexCache
    from evals.report import table, write_report
    from evals.runner import EvalRunner, llamaindex_config, report_folder_default
    from retrieval.settings import get_settings
    from retrieval.store import StoreError

    try:
        evalset = load_eval_set(set_dir).limited(limit)
    except EvalSetError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(ExitCode.USAGE)
    settings = get_settings()
    runner = EvalRunner(settings, IndexCache(cache), depth=depth)
    try:
        reranker = runner.reranker(settings)
        reranker_ok = reranker.available
        configs = builtin_configs(settings, reranker_ok, reranker.name)
        default = reference_name(settings, reranker_ok)
        base = next(c for c in configs if c.name == default)
        if only:
            unknown = set(only) - {c.name for c in configs}
            if unknown:
                raise ConfigError(
                    f"--only: unknown rows {', '.join(sorted(unknown))}; built-in: {', '.join(c.name for c in configs)}"
                )
            configs = [c for c in configs if c.name in only or c.name == default]
        configs += [parse_config(spec, base, settings) for spec in config]
        if baseline:
            configs.append(llamaindex_config(settings))
        chosen = reference or default
        if chosen not in {c.name for c in configs}:
            raise ConfigError(f"--reference '{chosen}' is not one of the rows: {', '.join(c.name for c in configs)}")
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(ExitCode.USAGE)

    command = _reproduce(
        "eval",
        [str(set_dir)],
        config=config,
        limit=limit,
        depth=None if depth == 100 else depth,
        only=only,
        baseline=baseline,
        reference=reference,
        answers=answers or None,
        answers_seed=answers_seed if answers else None,
    ) + (" --answers-only" if answers_only else "")
    if answers_only:
        _answer_eval(runner, evalset, [c for c in configs if c.kind == "cairn"], answers, answers_seed, out, command)
        return
    try:
        with _progress() as progress:
            runner.progress = progress
            run = runner.run(evalset, configs, chosen)
    except (StoreError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(ExitCode.INDEX_UNAVAILABLE if isinstance(exc, StoreError) else ExitCode.USAGE)

    headers, rows = table(run)
    shown = Table(title=f"{run.set_name}: {run.queries} queries (▲/▼ significant vs {run.reference}, p<0.05)")
    for i, header in enumerate(headers):
        shown.add_column(header, justify="left" if i == 0 else "right")
    for row in rows:
        shown.add_row(*row)
    out_console = Console()
    if not out_console.is_terminal:
        out_console = Console(width=200)  # a pipe or a log: never squeeze the numbers
    out_console.print(shown)
    for result in run.results:
        for note in result.notes:
            err.print(f"[yellow]{result.config.name}[/yellow]: {note}")
        if result.index and result.index.failures:
            err.print(f"[yellow]{result.config.name}[/yellow]: {len(result.index.failures)} file(s) failed to index")
    partial = bool(only or limit or not baseline or reference or depth != 100)
    written = write_report(run, out or report_folder_default(run.set_name, partial), command)
    out_console.print(
        f"report: {written.report}  results: {written.results}  charts: {', '.join(map(str, written.charts))}"
    )
    if answers:
        answer_configs = [c for c in configs if c.kind == "cairn" and (c.name == chosen or c.name in _extra(config))]
        _answer_eval(runner, evalset, answer_configs, answers, answers_seed, written.report.parent, command)


def _extra(specs: list[str]) -> set[str]:
    return {spec.partition(":")[0] for spec in specs}


def _answer_eval(runner, evalset, configs, n: int, seed: int, out: Optional[Path], command: str) -> None:
    """The answers, scored; written to answers.md / answers.json beside the retrieval report."""
    import os

    from evals.answer_eval import load_runs, markdown, merge_run, new_run, write_runs
    from retrieval.store import StoreError

    folder = out or Path("evals/reports") / evalset.name
    load_before = os.getloadavg()[0]
    try:
        with _progress() as progress:
            runner.progress = progress
            summaries = runner.answer(evalset, configs, n, seed)
    except StoreError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(ExitCode.INDEX_UNAVAILABLE)
    run = new_run(command, n, seed, summaries, dict(runner.answer_records), load_before)
    # Every earlier run stays in the report; a run of the same command replaces its own.
    write_runs(folder, merge_run(load_runs(folder), run))
    Console(width=200).print(markdown(summaries, n, seed) + f"\n\nReproduce: `{command}`\n")


def _reproduce(name: str, args: list[str], **options) -> str:
    """The command line that reproduces a run (without defaults that were left alone)."""
    parts = ["cairn", *name.split(), *args]
    for option, value in options.items():
        flag = "--" + option.replace("_", "-")
        if value is None or value == [] or value is True:
            continue
        if value is False:
            parts.append(f"--no-{option}")
        elif isinstance(value, list):
            for item in value:
                parts += [flag, item]
        else:
            parts += [flag, str(value)]
    return shlex.join(parts)


@bench_app.command("ingest")
def bench_ingest_command(
    folder: Path = typer.Argument(..., help="Folder of documents to ingest into a temporary index."),
    out: Path = typer.Option(Path("evals/reports/bench"), "--out", help="Bench report folder."),
) -> None:
    """Ingest throughput: pipeline vs embedding alone (chunks/s), unchanged re-run, peak memory."""
    from evals.bench_ingest import as_dict, bench_ingest, markdown
    from evals.bench_report import rebuild, save_section, throughput_chart
    from retrieval.settings import get_settings

    if not folder.is_dir():
        err.print(f"[red]error:[/red] {folder} is not a folder; give a folder of documents")
        raise typer.Exit(ExitCode.USAGE)
    settings = get_settings()
    with err.status(f"ingesting {folder} twice into a temporary index, then embedding its chunks alone..."):
        bench = bench_ingest(folder, settings)
    out.mkdir(parents=True, exist_ok=True)
    chart = throughput_chart(
        out / "ingest_throughput.png",
        ["ingest pipeline", "embedding alone"],
        [bench.pipeline_chunks_per_s, bench.embedding_chunks_per_s],
        f"{Path(bench.folder).name}: {bench.chunks} chunks (ratio {bench.throughput_ratio})",
    )
    text = markdown(bench) + f"\n\n![ingest throughput]({chart.name})"
    save_section(out, "ingest", "Ingest throughput", text, as_dict(bench), _reproduce("bench ingest", [str(folder)]))
    report = rebuild(out)
    Console().print(markdown(bench))
    Console().print(f"report: {report}")


def _register_other_benches() -> None:
    """Benchmarks written in other parts (`evals/bench_search.py`, `evals/bench_answer.py`)
    add their own subcommands when present, and save their sections with bench_report."""
    import importlib

    for module_name in (
        "evals.bench_search", "evals.bench_answer", "evals.bench_load", "evals.reliability", "evals.bench_fill",
        "evals.bench_chat_page",
    ):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        if hasattr(module, "register"):
            module.register(bench_app)


def register(app: typer.Typer) -> None:
    """Add this part's commands to the `cairn` app."""
    app.command("eval")(eval_command)
    _register_other_benches()
    app.add_typer(bench_app, name="bench")
