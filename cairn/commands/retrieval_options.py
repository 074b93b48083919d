"""The command-line form of `RetrievalOptions`: `cairn search` and `cairn ask` declare the same
options with these types and build the model with `build_options`, so no option exists in one
command and not the other."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Optional

import typer
from pydantic import ValidationError

from retrieval.search_schemas import RetrievalOptions, SearchFilters

TopK = Annotated[Optional[int], typer.Option("--top-k", min=1, max=1000, help="hits to return (default CAIRN_TOP_K)")]
Mode = Annotated[str, typer.Option("--mode", help="hybrid, dense or sparse")]
Fusion = Annotated[Optional[str], typer.Option("--fusion", help="rrf or dbsf (default CAIRN_FUSION)")]
NoRerank = Annotated[bool, typer.Option("--no-rerank", help="fused order, no reranker")]
Prefetch = Annotated[
    Optional[int], typer.Option("--prefetch", min=1, max=1000, help="candidates per retriever (default CAIRN_PREFETCH_LIMIT)")
]
TokenBudget = Annotated[
    Optional[int], typer.Option("--token-budget", min=1, max=100_000, help="context tokens (default CAIRN_CONTEXT_TOKEN_BUDGET)")
]
FileTypes = Annotated[list[str], typer.Option("--file-type", help="e.g. pdf; repeat for several")]
PathPrefix = Annotated[Optional[str], typer.Option("--path-prefix", help="a folder relative to the ingested root")]
ModifiedAfter = Annotated[Optional[datetime], typer.Option("--modified-after")]
ModifiedBefore = Annotated[Optional[datetime], typer.Option("--modified-before")]
Sources = Annotated[list[str], typer.Option("--source", help="an ingested source name; repeat for several")]

# RetrievalOptions field (or filters.field) -> the option that sets it; a test checks it covers the model.
OPTION_OF_FIELD = {
    "top_k": "--top-k",
    "mode": "--mode",
    "fusion": "--fusion",
    "rerank": "--no-rerank",
    "prefetch_limit": "--prefetch",
    "token_budget": "--token-budget",
    "filters.file_types": "--file-type",
    "filters.path_prefix": "--path-prefix",
    "filters.modified_after": "--modified-after",
    "filters.modified_before": "--modified-before",
    "filters.sources": "--source",
}
_OPTION_OF_NAME = {field.rpartition(".")[2]: option for field, option in OPTION_OF_FIELD.items()}


class OptionsError(ValueError):
    """Bad options, named by the command-line option that caused them."""


def options_error(exc: ValidationError) -> str:
    """Pydantic's errors, named by the command-line option that caused them."""
    parts = []
    for error in exc.errors():
        name = next((str(p) for p in reversed(error["loc"]) if isinstance(p, str) and p != "filters"), None)
        message = error["msg"].removeprefix("Value error, ")
        option = _OPTION_OF_NAME.get(name or "", f"--{(name or '').replace('_', '-')}")
        parts.append(f"{option}: {message}" if name else message)
    return "; ".join(parts)


def build_options(
    top_k: int | None,
    mode: str,
    fusion: str | None,
    no_rerank: bool,
    prefetch: int | None,
    token_budget: int | None,
    file_types: list[str],
    path_prefix: str | None,
    modified_after: datetime | None,
    modified_before: datetime | None,
    sources: list[str],
) -> RetrievalOptions:
    try:
        filters = SearchFilters(
            file_types=file_types or None,
            path_prefix=path_prefix,
            modified_after=modified_after,
            modified_before=modified_before,
            sources=sources or None,
        )
        return RetrievalOptions(
            top_k=top_k, mode=mode, fusion=fusion, rerank=not no_rerank, prefetch_limit=prefetch,
            token_budget=token_budget, filters=filters,
        )
    except ValidationError as exc:
        raise OptionsError(options_error(exc)) from None
