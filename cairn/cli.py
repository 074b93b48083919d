"""The `cairn` console script: one Typer app, each part adding its own subcommands."""

from __future__ import annotations

import typer

from retrieval.runtime import configure_runtime

configure_runtime()  # before torch, transformers or unstructured are imported

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Cairn: search and cited answers over your documents.")


def _register() -> None:
    from app import cli as app_cli
    from evals import cli as evals_cli
    from ingest import cli as ingest_cli
    from retrieval import cli as retrieval_cli
    from retrieval.answer import cli as answer_cli
    from retrieval.reranker_training import cli as reranker_training_cli

    for part in (ingest_cli, retrieval_cli, answer_cli, evals_cli, app_cli, reranker_training_cli):
        part.register(app)


_register()


def main() -> None:
    app()
