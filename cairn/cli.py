"""The `cairn` console script: one Typer app, each part adding its own subcommands."""

from __future__ import annotations

import typer

from retrieval.process_env import configure_process_env

configure_process_env()  # before torch, transformers or unstructured are imported

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Cairn: search and cited answers over your documents.")


def _register() -> None:
    from cairn.commands import ask, cache, evals, index, ingest, reranker, search, ui

    for part in (ingest, index, search, ask, cache, evals, ui, reranker):
        part.register(app)


_register()


@app.command("doctor")
def doctor_command(
    as_json: bool = typer.Option(False, "--json", help="one JSON object: ok and every check"),
) -> None:
    """Check the CPU against the llama.cpp build, the model files, the index, Chromium, disk and memory."""
    from rich.console import Console

    from cairn import doctor
    from retrieval.settings import get_settings

    checks = doctor.run_checks(get_settings())
    if as_json:
        print(doctor.as_json(checks))
    else:
        console = Console(highlight=False, soft_wrap=True)
        colour = {"ok": "green", "failed": "red", "skipped": "yellow"}
        for check, line in zip(checks, doctor.report_lines(checks)):
            console.print(f"[{colour[check.status]}]{line}[/]")
    if any(c.status == "failed" for c in checks):
        raise typer.Exit(1)


def main() -> None:
    app()
