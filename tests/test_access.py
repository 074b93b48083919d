"""Identities (API keys -> user and groups) and the ACL suite: a caller outside a group never
sees a restricted document, whatever it asks and however it asks."""

from __future__ import annotations

import hashlib

import pytest
from fixtures_retrieval import (
    HR,
    NOBODY,
    PUBLIC,
    RESTRICTED_PATH,
    RESTRICTED_PHRASE,
    retrieval_settings,
)
from pydantic import ValidationError

from retrieval.access import AuthError, Identities, IdentitiesFileError
from retrieval.index_schema import Filter, MatchAny
from retrieval.search_schemas import ContextRequest, SearchFilters, SearchRequest

ANA_KEY = "ana-key-0123456789abcdef"
BOB_KEY = "bob-key-0123456789abcdef"

VERBATIM = [
    RESTRICTED_PHRASE,
    "The salary band for a Senior Engineer (level L5) is 142,000 to 168,000 euros per year.",
    f"Key people in the payments team receive the {RESTRICTED_PHRASE} of 20 percent of the annual salary",
    "salary bands 2024 hr",
]


def write_identities(tmp_path, text: str):
    path = tmp_path / "identities.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- identities ---------------------------------------------------------------------------------


def test_keys_map_to_users_and_groups(tmp_path):
    bob_sha = hashlib.sha256(BOB_KEY.encode()).hexdigest()
    path = write_identities(
        tmp_path,
        f"""
anonymous_groups: [public]
users:
  - user: ana
    api_key: {ANA_KEY}
    groups: [public, hr]
  - user: bob
    api_key_sha256: {bob_sha}
    groups: [public]
""",
    )
    identities = Identities.load(path)
    assert identities.resolve(ANA_KEY).groups == ("public", "hr")
    assert identities.resolve(BOB_KEY).user == "bob"
    assert identities.resolve(None).groups == ("public",)
    with pytest.raises(AuthError, match="unknown API key"):
        identities.resolve("not-a-key-0123456789")
    with pytest.raises(AuthError):
        identities.resolve(ANA_KEY[:-1])


def test_anonymous_callers_can_be_refused(tmp_path):
    path = write_identities(tmp_path, f"anonymous_groups: []\nusers: [{{user: ana, api_key: {ANA_KEY}}}]\n")
    identities = Identities.load(path)
    with pytest.raises(AuthError, match="API key is required"):
        identities.resolve(None)
    assert identities.resolve(ANA_KEY).groups == ()


def test_without_a_file_everyone_is_anonymous_and_public_only(tmp_path):
    identities = Identities.from_settings(retrieval_settings(tmp_path))
    assert identities.resolve(None).groups == ("public",)
    assert not identities.keys_configured
    with pytest.raises(AuthError):
        identities.resolve("any-key-at-all-0000")
    custom = Identities.from_settings(retrieval_settings(tmp_path, anonymous_groups=["public", "staff"]))
    assert custom.resolve(None).groups == ("public", "staff")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("users: [{user: ana, grups: [hr], api_key: " + ANA_KEY + "}]", "users.0.grups"),
        ("users: [{user: ana, groups: [hr]}]", "exactly one of api_key or api_key_sha256"),
        ("users: [{user: ana, api_key: short}]", "at least 16 characters"),
        ("users: [{user: ana, api_key_sha256: nothex}]", "users.0.api_key_sha256"),
        (f"users: [{{user: a, api_key: {ANA_KEY}}}, {{user: b, api_key: {ANA_KEY}}}]", "share the same API key"),
        ("users: [{user: ana, api_key: " + ANA_KEY + ", groups: hr}]", "users.0.groups"),
        ("users: [unclosed", "not valid YAML"),
    ],
)
def test_bad_identities_files_name_the_file_and_field(tmp_path, text, expected):
    path = write_identities(tmp_path, text)
    with pytest.raises(IdentitiesFileError) as err:
        Identities.load(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_missing_identities_file(tmp_path):
    with pytest.raises(IdentitiesFileError, match="CAIRN_IDENTITIES_FILE"):
        Identities.load(tmp_path / "nope.yaml")


# --- the ACL suite (both backends) -------------------------------------------------------------


def restricted_ids(service) -> tuple[str, set[str]]:
    points = list(
        service.store.scroll(service.settings.collection, Filter(must=(MatchAny("path", (RESTRICTED_PATH,)),)))
    )
    assert points, "the fixture must index the restricted document"
    return points[0].payload["doc_id"], {p.id for p in points}


def assert_nothing_restricted(service, payload: str) -> None:
    """``payload``: a response as JSON, without the caller's own query echoed back."""
    doc_id, chunk_ids = restricted_ids(service)
    assert RESTRICTED_PATH not in payload
    assert doc_id not in payload
    assert RESTRICTED_PHRASE not in payload
    assert "142,000" not in payload and "Salary bands" not in payload
    for chunk_id in chunk_ids:
        assert chunk_id not in payload


@pytest.mark.parametrize("query", VERBATIM)
@pytest.mark.parametrize("mode", ["hybrid", "dense", "sparse"])
def test_search_never_returns_restricted_chunks(service, query, mode):
    for fusion in ("rrf", "dbsf"):
        response = service.search(SearchRequest(query=query, mode=mode, fusion=fusion, top_k=50, rerank=False), PUBLIC)
        assert_nothing_restricted(service, response.model_dump_json(exclude={"query"}))


@pytest.mark.parametrize("query", VERBATIM)
def test_context_never_contains_restricted_chunks(service, query):
    response = service.context(ContextRequest(query=query, top_k=50, token_budget=5000, rerank=False), PUBLIC)
    assert_nothing_restricted(service, response.model_dump_json(exclude={"query"}))
    for block in response.blocks:
        assert RESTRICTED_PHRASE not in block.text


def test_the_group_member_does_see_it(service):
    response = service.search(SearchRequest(query=RESTRICTED_PHRASE, rerank=False, top_k=3), HR)
    assert response.hits[0].path == RESTRICTED_PATH
    context = service.context(ContextRequest(query=RESTRICTED_PHRASE, rerank=False), HR)
    assert any(RESTRICTED_PHRASE in b.text for b in context.blocks)


@pytest.mark.parametrize(
    "filters",
    [
        SearchFilters(path_prefix="hr"),
        SearchFilters(path_prefix="hr/salary-bands-2024.md"),
        SearchFilters(sources=["company"], file_types=["md"]),
        SearchFilters(path_prefix=""),
    ],
)
def test_crafted_filters_cannot_widen_access(service, filters):
    response = service.search(SearchRequest(query=RESTRICTED_PHRASE, filters=filters, top_k=100, rerank=False), PUBLIC)
    assert_nothing_restricted(service, response.model_dump_json(exclude={"query"}))


def test_a_request_cannot_carry_groups():
    with pytest.raises(ValidationError, match="groups"):
        SearchFilters.model_validate({"groups": ["hr"]})
    with pytest.raises(ValidationError, match="groups"):
        SearchRequest.model_validate({"query": "salary", "groups": ["hr"]})


def test_everything_public_but_nothing_restricted_at_any_depth(service):
    public_chunks = service.store.count(service.settings.collection, Filter(must=(MatchAny("groups", ("public",)),)))
    response = service.search(SearchRequest(query="salary", top_k=1000, rerank=False), PUBLIC)
    assert len(response.hits) == public_chunks
    assert_nothing_restricted(service, response.model_dump_json(exclude={"query"}))


def test_caller_without_groups_sees_nothing(service):
    assert service.search(SearchRequest(query="vacation", rerank=False), NOBODY).hits == []
    assert service.context(ContextRequest(query="vacation", rerank=False), NOBODY).blocks == []
    assert service.documents(NOBODY) == []
    health = service.health(NOBODY)
    assert (health.documents, health.chunks) == (0, 0)


def test_documents_and_health_count_only_what_the_caller_may_see(service):
    public_docs = service.documents(PUBLIC)
    hr_docs = service.documents(HR)
    assert RESTRICTED_PATH not in {d.path for d in public_docs}
    assert RESTRICTED_PATH in {d.path for d in hr_docs}
    assert len(hr_docs) == len(public_docs) + 1
    public, hr = service.health(PUBLIC), service.health(HR)
    assert public.status == hr.status == "ok"
    assert public.documents == len(public_docs) and hr.documents == len(hr_docs)
    restricted_chunks = len(restricted_ids(service)[1])
    assert hr.chunks == public.chunks + restricted_chunks
    assert_nothing_restricted(service, public.model_dump_json() + "".join(d.model_dump_json() for d in public_docs))
