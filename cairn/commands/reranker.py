"""`cairn train-reranker`: mine pairs from the index, fine-tune a cross-encoder, write its card."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from cairn.commands.opening import opened_store
from cairn.exit_codes import ExitCode

err = Console(stderr=True, soft_wrap=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        TextColumn("{task.fields[note]}"), console=err, disable=not err.is_terminal,
    )


def _log_every(label: str, every: int):
    """Plain progress lines for logs, where no progress bar is drawn."""

    def log(done: int, total: int, note: str = "") -> None:
        if not err.is_terminal and (done % every == 0 or done == total):
            err.print(f"{label} {done}/{total} {note}".rstrip(), highlight=False)

    return log


def train_reranker(
    out: Optional[Path] = typer.Option(None, "--out", help="Model folder (default: data/models/reranker-<collection>)."),
    from_index: bool = typer.Option(False, "--from-index", help="Mine training pairs from the indexed collection (no labels needed)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out on its mined pairs, from its latest checkpoint if any."),
    pairs: int = typer.Option(5000, "--pairs", min=1, help="Most (query, passage) pairs to mine."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1, help="Training steps (default: one pass over the pairs)."),
    epochs: float = typer.Option(1.0, "--epochs", min=0.01, help="Passes over the pairs when --max-steps is not given."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", min=0.1, help="Minutes to train before stopping at a checkpoint (resumable)."),
    collection: Optional[str] = typer.Option(None, "--collection", help="Collection to mine (default: CAIRN_COLLECTION)."),
    base: Optional[str] = typer.Option(None, "--base", help="Starting weights (default: CAIRN_RERANKER_MODEL if set, else the packaged MiniLM)."),
    max_length: Optional[int] = typer.Option(None, "--max-length", min=16, help="Tokens per pair (default: CAIRN_RERANK_MAX_LENGTH, as at inference)."),
    queries_per_step: int = typer.Option(8, "--queries-per-step", min=1, help="Queries per step, each with its positive and negatives."),
    negatives: Optional[int] = typer.Option(None, "--negatives", min=1, help="Negatives per query in training, hardest first (default: all mined)."),
    learning_rate: float = typer.Option(5e-5, "--lr", help="Peak learning rate."),
    seed: int = typer.Option(13, "--seed", help="Seed for mining, data order and initialisation."),
    groups: list[str] = typer.Option([], "--group", help="Mine only chunks these access groups may see (repeatable; default: all)."),
    exclude_queries: list[Path] = typer.Option([], "--exclude-queries", help="A queries.jsonl whose texts are never mined as queries (repeatable)."),
    corpus_licence: str = typer.Option("not recorded (the indexed documents' own terms)", "--corpus-licence", help="Licence of the indexed text, for the model card."),
    mine_only: bool = typer.Option(False, "--mine-only", help="Write the mined pairs to --out and stop."),
) -> None:
    """Fine-tune Cairn's cross-encoder reranker on pairs mined from your own index
    (heading -> section, title -> first passage, API term -> description, with hard negatives
    from Cairn's hybrid search), checkpointing so --resume continues a long run.
    Use the result with CAIRN_RERANKER_MODEL=<out>."""
    from reranker_training.mining import MiningConfig, load_mined, read_excluded_queries
    from reranker_training.model_card import ModelCard
    from reranker_training.training import RerankerTrainer, TrainingConfig, TrainingError
    from retrieval.settings import Settings

    if from_index == resume:
        err.print("[red]error:[/red] give --from-index (mine pairs from the index and train) or --resume (continue the run in --out)")
        raise typer.Exit(ExitCode.USAGE)
    settings = Settings(**({"collection": collection} if collection else {}))
    out = out or Path("data/models") / f"reranker-{settings.collection}"

    command = shlex.join(["cairn", *sys.argv[1:]])
    if resume:
        try:
            mined = load_mined(out)
        except FileNotFoundError as exc:
            err.print(f"[red]error:[/red] {exc}; start with --from-index")
            raise typer.Exit(ExitCode.USAGE)
    else:
        try:
            excluded = frozenset().union(*(read_excluded_queries(p) for p in exclude_queries))
        except (OSError, ValueError) as exc:
            err.print(f"[red]error:[/red] --exclude-queries: {exc}")
            raise typer.Exit(ExitCode.USAGE)
        mining_config = MiningConfig(max_pairs=pairs, seed=seed, groups=tuple(groups) or None, exclude_queries=excluded)
        mined = _mine(settings, out, mining_config, command)
        report = mined.report
        err.print(
            f"mined {len(mined.pairs)} pairs ({', '.join(f'{k} {v}' for k, v in sorted(report.pairs.items()))}) "
            f"from {report.documents} documents, {report.chunks} chunks; {report.ambiguous_dropped} candidates with ambiguous queries dropped"
            + (f", {report.excluded} excluded" if report.excluded else ""),
            highlight=False,
        )
        if mine_only:
            err.print(f"pairs: {out / 'pairs.jsonl'}")
            return

    base_model = base or _default_base(settings)
    config = TrainingConfig(
        base_model=base_model,
        max_length=max_length or settings.rerank_max_length,
        queries_per_step=queries_per_step,
        max_negatives=negatives,
        learning_rate=learning_rate,
        epochs=epochs,
        max_steps=max_steps,
        time_limit_s=time_limit * 60 if time_limit else None,
        seed=seed,
    )
    if resume:
        config = _resumed_config(out, config)
    try:
        with _progress() as progress:
            task = progress.add_task("training", total=None, note="")
            log = _log_every("step", 10)

            def on_step(step: int, total: int, loss: float) -> None:
                progress.update(task, completed=step, total=total, note=f"loss {loss:.4f}")
                log(step, total, f"loss {loss:.4f}")

            trainer = RerankerTrainer(out, mined.pairs, config, on_step=on_step)
            # --resume after --mine-only starts training on the folder's pairs
            result = trainer.train(resume=resume and trainer.latest_checkpoint() is not None)
    except TrainingError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(ExitCode.USAGE)

    commands = [mined.command] if mined.command and mined.command != command else []
    card = ModelCard(
        base_model=config.base_model, corpus=mined.corpus, corpus_licence=corpus_licence, mining=mined.report,
        mining_config=mined.config, config=config, result=result, commands=commands + [command],
    )
    card.write(out)
    console = Console()
    console.print(f"trained {result.steps}/{result.total_steps} steps in {result.seconds:.0f} s"
                  + ("" if result.finished else " (stopped early: continue with --resume)"), highlight=False)
    for name, score in (("before", result.dev_before), ("after", result.dev_after)):
        if score:
            console.print(f"held-out mined queries {name}: MRR {score.mrr}, accuracy@1 {score.accuracy}, loss {score.loss}", highlight=False)
    console.print(f"model: {out}  (use it with CAIRN_RERANKER_MODEL={out})", highlight=False)


def _default_base(settings) -> str:
    """Adapting starts from the configured reranker when there is one, else the packaged MiniLM."""
    from retrieval.settings import DEFAULT_EMBEDDING_MODEL

    return settings.reranker_model or DEFAULT_EMBEDDING_MODEL


def _resumed_config(out: Path, config):
    """A resumed run keeps the hyper-parameters it started with; only the stopping rules may change."""
    import dataclasses

    from reranker_training.training import saved_config

    saved = saved_config(out)
    if saved is None:
        return config
    return dataclasses.replace(saved, max_steps=config.max_steps or saved.max_steps, time_limit_s=config.time_limit_s)


def _mine(settings, out: Path, config, command: str):
    from reranker_training.mining import MinedData, PairMiner, save_mined
    from retrieval.encoders import build_encoders
    from retrieval.search import HybridSearcher

    with opened_store(settings, err) as store:
        if not store.collection_exists(settings.collection):
            err.print(f"[red]error:[/red] collection '{settings.collection}' does not exist in {settings.data_dir}; "
                      "index documents with `cairn ingest FOLDER` first, or pick one with --collection")
            raise typer.Exit(ExitCode.INDEX_UNAVAILABLE)
        dense, sparse = build_encoders(settings.models)
        miner = PairMiner(store, settings.collection, HybridSearcher(store, dense, sparse, settings), config)
        with _progress() as progress:
            task = progress.add_task("mining pairs", total=None, note="")
            log = _log_every("mined", 500)

            def on_pair(done: int, wanted: int) -> None:
                progress.update(task, completed=done, total=wanted)
                log(done, wanted)

            pairs, report = miner.mine(progress=on_pair)
    where = settings.qdrant_url or str(settings.data_dir)
    mined = MinedData(pairs, report, config, f"{where} :: {settings.collection}", command)
    out.mkdir(parents=True, exist_ok=True)
    save_mined(out, mined)
    return mined


def register(app: typer.Typer) -> None:
    """Add this part's command to the `cairn` app."""
    app.command("train-reranker")(train_reranker)
