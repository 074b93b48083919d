"""`cairn search` and `cairn serve`."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Iterator, Optional

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from retrieval.search_schemas import SearchFilters, SearchRequest, SearchResponse, StageScore

_err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    _err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _queries(path: Path) -> Iterator[tuple[str, str]]:
    """``{"id", "text"}`` per line; a bad line names the file and line number."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise _fail(f"cannot read {path}: {exc.strerror}", 2) from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            yield str(row["id"]), str(row["text"])
        except (ValueError, KeyError, TypeError):
            raise _fail(f'{path}:{number}: expected a JSON object with "id" and "text"', 2) from None


def _stage(score: StageScore | None) -> str:
    return f"{score.score:.3f} #{score.rank}" if score else "-"


def _print_table(response: SearchResponse, console: Console) -> None:
    table = Table(title=f"{response.query}", title_justify="left", show_lines=False)
    for column in ("#", "dense", "bm25", "fused", "rerank", "document", "passage"):
        table.add_column(column, overflow="fold", no_wrap=column in ("#", "dense", "bm25", "fused", "rerank"))
    for rank, hit in enumerate(response.hits, 1):
        where = (
            hit.path + (f" p.{hit.page}" if hit.page else "") + (f"\n[dim]{hit.section}[/dim]" if hit.section else "")
        )
        snippet = " ".join(hit.text.split())[:160]
        s = hit.scores
        table.add_row(str(rank), _stage(s.dense), _stage(s.sparse), _stage(s.fused), _stage(s.rerank), where, snippet)
    console.print(table)
    rerank = response.rerank
    console.print(
        f"[dim]reranker: {rerank.reranker} ({'applied' if rerank.applied else 'not applied'})"
        + (f" - {rerank.note}" if rerank.note else "")
        + "[/dim]",
        highlight=False,
    )
    console.print("[dim]" + "  ".join(f"{k} {v:.1f} ms" for k, v in response.timings_ms.items()) + "[/dim]")


def _options_error(exc: ValidationError) -> str:
    """Pydantic's errors, named by the command-line option that caused them."""
    parts = []
    for error in exc.errors():
        option = next((str(p) for p in reversed(error["loc"]) if isinstance(p, str) and p != "filters"), None)
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"--{option.replace('_', '-')}: {message}" if option else message)
    return "; ".join(parts)


def search_command(
    query: Optional[str] = typer.Argument(None, help="the question; or use --queries"),
    queries: Optional[Path] = typer.Option(
        None, "--queries", help='JSONL of {"id", "text"}: one JSON line out per query'
    ),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1, max=1000, help="hits to return (default CAIRN_TOP_K)"),
    fusion: Optional[str] = typer.Option(None, "--fusion", help="rrf or dbsf (default CAIRN_FUSION)"),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid, dense or sparse"),
    no_rerank: bool = typer.Option(False, "--no-rerank", help="fused order, no reranker"),
    file_type: list[str] = typer.Option([], "--file-type", help="e.g. pdf; repeat for several"),
    path_prefix: Optional[str] = typer.Option(None, "--path-prefix", help="a folder relative to the ingested root"),
    modified_after: Optional[datetime] = typer.Option(None, "--modified-after"),
    modified_before: Optional[datetime] = typer.Option(None, "--modified-before"),
    source: list[str] = typer.Option([], "--source", help="an ingested source name; repeat for several"),
    as_json: bool = typer.Option(False, "--json", help="JSON on stdout"),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="CAIRN_API_KEY", help="search as this key's user"),
) -> None:
    """Hybrid search over the index, with every stage's score and time."""
    from retrieval.access import AuthError, Identities, IdentitiesFileError
    from retrieval.service import SearchService
    from retrieval.settings import get_settings
    from retrieval.store import StoreError

    if (query is None) == (queries is None):
        raise _fail("give a question or --queries FILE.jsonl (not both)", 2)
    try:
        filters = SearchFilters(
            file_types=file_type or None,
            path_prefix=path_prefix,
            modified_after=modified_after,
            modified_before=modified_before,
            sources=source or None,
        )
        options = dict(top_k=top_k, fusion=fusion, mode=mode, rerank=not no_rerank, filters=filters)
        if query is not None:
            SearchRequest(query=query, **options)  # reject bad options before loading models
    except ValidationError as exc:
        raise _fail(_options_error(exc), 2) from None

    # Every query is checked before models load: a bad line fails fast, not halfway through.
    batch: list[tuple[str, SearchRequest]] = []
    for query_id, text in _queries(queries) if queries is not None else ():
        try:
            batch.append((query_id, SearchRequest(query=text, **options)))
        except ValidationError as exc:
            raise _fail(f"{queries}: query {query_id}: {exc.errors()[0]['msg']}", 2) from None
    settings = get_settings()
    if no_rerank:  # no request will rerank: do not load the reranker's model
        settings = settings.model_copy(update={"reranker": "none"})
    try:
        identity = Identities.from_settings(settings).resolve(api_key)
    except (AuthError, IdentitiesFileError) as exc:
        raise _fail(str(exc), 2) from None
    try:
        service = SearchService.from_settings(settings)
    except StoreError as exc:
        raise _fail(str(exc)) from None
    try:
        if queries is not None:
            for query_id, request in batch:
                response = service.search(request, identity)
                row = {
                    "query_id": query_id,
                    "hits": [h.model_dump(mode="json") for h in response.hits],
                    "rerank": response.rerank.model_dump(mode="json"),
                    "timings_ms": response.timings_ms,
                }
                sys.stdout.write(json.dumps(row) + "\n")
                sys.stdout.flush()
            return
        response = service.search(SearchRequest(query=query, **options), identity)
        if as_json:
            sys.stdout.write(response.model_dump_json(indent=2) + "\n")
        else:
            _print_table(response, Console())
    except StoreError as exc:
        raise _fail(str(exc)) from None
    finally:
        service.close()


def serve_command(
    host: Optional[str] = typer.Option(None, "--host", help="default CAIRN_HOST (127.0.0.1)"),
    port: Optional[int] = typer.Option(None, "--port", help="default CAIRN_PORT (8000)"),
) -> None:
    """Start the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from retrieval.access import Identities, IdentitiesFileError
    from cairn.api.app import create_app
    from retrieval.service import SearchService
    from retrieval.settings import get_settings
    from retrieval.store import StoreError

    settings = get_settings()
    try:
        identities = Identities.from_settings(settings)
    except IdentitiesFileError as exc:
        raise _fail(str(exc), 2) from None
    try:
        service = SearchService.from_settings(settings)
    except StoreError as exc:
        raise _fail(str(exc)) from None
    routers = []
    if importlib.util.find_spec("cairn.api.answer_routes") is not None:  # the answer endpoints, once that part exists
        from cairn.api.answer_routes import router as answer_router

        routers.append(answer_router)
    if not identities.keys_configured:
        _err.print(
            "[yellow]no CAIRN_IDENTITIES_FILE: every caller is anonymous with groups "
            f"{settings.anonymous_groups}[/yellow]"
        )
    try:
        uvicorn.run(create_app(service, identities, routers), host=host or settings.host, port=port or settings.port)
    finally:
        service.close()


def register(app: typer.Typer) -> None:
    """Add this part's commands to the `cairn` app."""
    app.command("search")(search_command)
    app.command("serve")(serve_command)
