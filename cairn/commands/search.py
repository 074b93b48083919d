"""`cairn search` and `cairn serve`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterator, Optional

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from cairn.commands import retrieval_options as opts
from cairn.commands.opening import err, fail, open_runtime
from cairn.exit_codes import ExitCode
from retrieval.search_schemas import SearchRequest, SearchResponse, StageScore


def _queries(path: Path) -> Iterator[tuple[str, str]]:
    """``{"id", "text"}`` per line; a bad line names the file and line number."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}", ExitCode.USAGE) from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            yield str(row["id"]), str(row["text"])
        except (ValueError, KeyError, TypeError):
            raise fail(f'{path}:{number}: expected a JSON object with "id" and "text"', ExitCode.USAGE) from None


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


def search_command(
    query: Optional[str] = typer.Argument(None, help="the question; or use --queries"),
    queries: Optional[Path] = typer.Option(
        None, "--queries", help='JSONL of {"id", "text"}: one JSON line out per query'
    ),
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
    as_json: bool = typer.Option(False, "--json", help="JSON on stdout"),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="CAIRN_API_KEY", help="search as this key's user"),
) -> None:
    """Hybrid search over the index, with every stage's score and time."""
    from retrieval.access import AuthError
    from retrieval.settings import get_settings
    from retrieval.store import StoreError

    if (query is None) == (queries is None):
        raise fail("give a question or --queries FILE.jsonl (not both)", ExitCode.USAGE)
    try:
        options = opts.build_options(
            top_k, mode, fusion, no_rerank, prefetch, token_budget, file_type, path_prefix, modified_after,
            modified_before, source,
        ).model_dump()
        if query is not None:
            SearchRequest(query=query, **options)  # reject bad options before loading models
    except opts.OptionsError as exc:
        raise fail(str(exc), ExitCode.USAGE) from None
    except ValidationError as exc:
        raise fail(opts.options_error(exc), ExitCode.USAGE) from None

    # Every query is checked before models load: a bad line fails fast, not halfway through.
    batch: list[tuple[str, SearchRequest]] = []
    for query_id, text in _queries(queries) if queries is not None else ():
        try:
            batch.append((query_id, SearchRequest(query=text, **options)))
        except ValidationError as exc:
            raise fail(f"{queries}: query {query_id}: {exc.errors()[0]['msg']}", ExitCode.USAGE) from None
    settings = get_settings()
    if no_rerank:  # no request will rerank: do not load the reranker's model
        settings = settings.model_copy(update={"reranker": "none"})
    runtime = open_runtime(settings)
    try:
        identity = runtime.identities.resolve(api_key)
        if queries is not None:
            for query_id, request in batch:
                response = runtime.search.search(request, identity)
                row = {
                    "query_id": query_id,
                    "hits": [h.model_dump(mode="json") for h in response.hits],
                    "rerank": response.rerank.model_dump(mode="json"),
                    "timings_ms": response.timings_ms,
                }
                sys.stdout.write(json.dumps(row) + "\n")
                sys.stdout.flush()
            return
        response = runtime.search.search(SearchRequest(query=query, **options), identity)
        if as_json:
            sys.stdout.write(response.model_dump_json(indent=2) + "\n")
        else:
            _print_table(response, Console())
    except AuthError as exc:
        raise fail(str(exc), ExitCode.USAGE) from None
    except StoreError as exc:
        raise fail(str(exc), ExitCode.INDEX_UNAVAILABLE) from None
    finally:
        runtime.close()


def serve_command(
    host: Optional[str] = typer.Option(None, "--host", help="default CAIRN_HOST (127.0.0.1)"),
    port: Optional[int] = typer.Option(None, "--port", help="default CAIRN_PORT (8000)"),
    qdrant_local: Optional[Path] = typer.Option(
        None,
        "--qdrant-local",
        hidden=True,  # for benches: no Qdrant server binary runs where they do
        help="Serve the server backend through qdrant-client's local mode over this folder (one process at a time).",
    ),
) -> None:
    """Start the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from cairn.api.app import create_app
    from cairn.api.serving import serving
    from retrieval.settings import get_settings

    settings = get_settings()
    runtime = open_runtime(settings, _local_server_store(qdrant_local) if qdrant_local else None)
    if not runtime.identities.keys_configured:
        err.print(
            "[yellow]no CAIRN_IDENTITIES_FILE: every caller is anonymous with groups "
            f"{settings.anonymous_groups}[/yellow]"
        )
    try:
        app = create_app(runtime.search, runtime.identities, answers=runtime.answers)
        with serving(app, runtime, host or settings.host, port or settings.port):  # ingest jobs, serving.json, watching
            uvicorn.run(app, host=host or settings.host, port=port or settings.port)
    finally:
        runtime.close()


def _local_server_store(folder: Path):
    """The server backend's store over qdrant-client's local mode (the same API, in this process)."""
    from qdrant_client import QdrantClient

    from retrieval.store.server import ServerStore

    if not folder.is_dir():
        raise fail(f"--qdrant-local {folder}: not a folder; build an index there first", ExitCode.USAGE)
    try:
        return ServerStore(QdrantClient(path=str(folder)))
    except RuntimeError as exc:  # another process holds the folder
        raise fail(f"--qdrant-local {folder}: {exc}", ExitCode.INDEX_UNAVAILABLE) from None


def register(app: typer.Typer) -> None:
    """Add this part's commands to the `cairn` app."""
    app.command("search")(search_command)
    app.command("serve")(serve_command)
