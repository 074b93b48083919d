"""One `RetrievalOptions` model for every interface: each of its fields (and each filter) can be
set from `cairn search`, `cairn ask`, the HTTP API (search, context and answer requests) and the
chat page's sidebar, so no option exists in one and not another."""

from __future__ import annotations

import typer.main

from answers.schemas import AnswerRequest
from cairn.api.app import create_app
from cairn.cli import app as cli_app
from cairn.commands.retrieval_options import OPTION_OF_FIELD
from retrieval.access import Identities
from retrieval.search_schemas import ContextRequest, RetrievalOptions, SearchFilters, SearchRequest

# RetrievalOptions field (or filters.field) -> the sidebar widget's key that sets it.
WIDGET_OF_FIELD = {
    "top_k": "top_k",
    "mode": "mode",
    "fusion": "fusion",
    "rerank": "rerank",
    "prefetch_limit": "prefetch",
    "token_budget": "token_budget",
    "filters.file_types": "file_types",
    "filters.path_prefix": "folder",
    "filters.modified_after": "after",
    "filters.modified_before": "before",
    "filters.sources": "sources",
}


def option_fields() -> set[str]:
    top = {name for name in RetrievalOptions.model_fields if name != "filters"}
    return top | {f"filters.{name}" for name in SearchFilters.model_fields}


def test_the_maps_cover_every_field_of_the_model():
    assert set(OPTION_OF_FIELD) == option_fields()
    assert set(WIDGET_OF_FIELD) == option_fields()


def test_every_request_carries_the_whole_model():
    for request in (SearchRequest, ContextRequest, AnswerRequest):
        assert issubclass(request, RetrievalOptions)
        assert set(RetrievalOptions.model_fields) <= set(request.model_fields)


def test_cairn_search_and_ask_take_every_option():
    command = typer.main.get_command(cli_app)
    for name in ("search", "ask"):
        flags = {flag for param in command.commands[name].params for flag in getattr(param, "opts", [])}
        missing = {field: flag for field, flag in OPTION_OF_FIELD.items() if flag not in flags}
        assert missing == {}, f"cairn {name} lacks {missing}"


def test_the_http_api_takes_every_option(service):
    schemas = create_app(service, Identities.anonymous_only()).openapi()["components"]["schemas"]
    filters = set(schemas["SearchFilters"]["properties"])
    for name in ("SearchRequest", "AnswerRequest"):
        properties = set(schemas[name]["properties"])
        missing = {f for f in option_fields() if f.partition(".")[2] not in filters and f not in properties}
        assert missing == set(), f"{name} lacks {missing}"
        assert "filters" in properties


def test_the_chat_page_sets_every_option(page, corpus_index):
    at = page(corpus_index).run()
    assert not at.exception
    keys = {widget.key for widget in at.sidebar if getattr(widget, "key", None)}
    for expander in at.sidebar.expander:
        keys |= {widget.key for widget in expander if getattr(widget, "key", None)}
    missing = {field: key for field, key in WIDGET_OF_FIELD.items() if key not in keys}
    assert missing == {}
