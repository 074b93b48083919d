"""Schemathesis against Cairn's own OpenAPI schema, in-process over a small real index: for
every operation, generated requests (valid and invalid) never get a 5xx, and every 4xx says
what is wrong and where (the field's location, or a message)."""

from __future__ import annotations

import hashlib
import os
from collections import Counter

import pytest
import schemathesis
from fixtures_answer import answer_settings
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from answers.service import AnswerService
from cairn.api.app import create_app
from retrieval.access import Identities, IdentitiesConfig, UserEntry

HR_KEY = "hr-key-0123456789abcdef"
# Per operation and mode; CAIRN_FUZZ_EXAMPLES=500 for a deeper run by hand.
EXAMPLES = int(os.environ.get("CAIRN_FUZZ_EXAMPLES", "30"))
LOCATIONS = {"body", "query", "header", "path", "cookie"}


@pytest.fixture(scope="module")
def fuzz_app(answer_search):
    """The real app over the answer tests' index; answers from the extractive chain only (no
    model to load); anonymous callers allowed, plus one keyed user."""
    identities = Identities(
        IdentitiesConfig(
            anonymous_groups=["public"],
            users=[UserEntry(user="hana", api_key_sha256=hashlib.sha256(HR_KEY.encode()).hexdigest(), groups=["hr"])],
        )
    )
    answers = AnswerService(answer_search, answer_settings(llm_providers=["extractive"]))
    return create_app(answer_search, identities, answers=answers, **_no_rate_limit())


def _no_rate_limit() -> dict:
    """The fuzzer sends hundreds of requests a second from one address: a per-caller rate limit
    would answer most of them 429 before a handler runs."""
    try:
        from cairn.api.limits import ApiLimits
    except ImportError:  # a tree without API limits
        return {}
    return {"limits": ApiLimits(rate_per_s=0)}


@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


def _operations(api_schema) -> list:
    return [result.ok() for result in api_schema.get_all_operations()]


def test_the_schema_lists_every_route(api_schema):
    labels = {op.label for op in _operations(api_schema)}
    assert labels >= {"POST /search", "POST /context", "GET /health", "GET /documents", "POST /answer"}


def _names_the_problem(status: int, body) -> str | None:
    """None when a 4xx body says what is wrong; else why not."""
    if not isinstance(body, dict) or "detail" not in body:
        return f"{status} without a 'detail': {body!r}"
    detail = body["detail"]
    if isinstance(detail, str):
        return None if detail.strip() else f"{status} with an empty detail"
    if not isinstance(detail, list) or not detail:
        return f"{status} detail is neither a message nor a list of errors: {detail!r}"
    for error in detail:
        loc = error.get("loc") if isinstance(error, dict) else None
        if not loc or loc[0] not in LOCATIONS or not str(error.get("msg", "")).strip():
            return f"{status} error without a location and a message: {error!r}"
    return None


def _check(case) -> int:
    response = case.call()
    reproduce = f"{case.operation.label}\nreproduce: {case.as_curl_command()}"
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}\n{reproduce}"
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        problem = _names_the_problem(response.status_code, body)
        assert problem is None, f"{problem}\n{reproduce}"
    return response.status_code


# schemathesis' pytest plugin (@schema.parametrize with a lazy fixture) reads a private pytest
# attribute that pytest 9 no longer has; its Hypothesis strategies are used directly instead.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_no_5xx_and_every_4xx_names_the_problem(api_schema, mode):
    statuses: dict[str, Counter] = {}
    for operation in _operations(api_schema):
        seen = statuses.setdefault(operation.label, Counter())

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,  # no .hypothesis/ folder in the tree; failures print their reproduction
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def fuzz(case) -> None:
            seen[_check(case)] += 1

        try:
            fuzz()
        except Unsatisfiable:  # no parameter that a negative value can be sent for (an optional string header)
            assert mode == GenerationMode.NEGATIVE and not len(operation.body), operation.label
    print(mode, {label: dict(seen) for label, seen in statuses.items()})
    bodies = ("POST /search", "POST /context", "POST /answer")
    assert all(sum(statuses[label].values()) for label in bodies), statuses
    if mode == GenerationMode.POSITIVE:  # the handlers were reached, not only auth and validation
        assert all(statuses[label][200] for label in bodies), statuses
