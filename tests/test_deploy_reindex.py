"""Alias-based re-index, end to end on both backends with the real ingest pipeline and search:
build v1 behind the alias, search through the alias, rebuild as v2 with other chunk settings,
switch, and a search service opened before the switch keeps answering — from v2."""

from __future__ import annotations

import json
import shutil

import pytest
from fixtures_deploy import open_backend
from fixtures_retrieval import COMPANY_FILES, PUBLIC, retrieval_settings
from typer.testing import CliRunner

from ingest.pipeline import IngestPipeline
from ingest.reindex import AliasReindexer, ReindexError, alias_target, drop_collection, switch_alias
from retrieval.index_schema import files_collection
from retrieval.rerank import NoReranker
from retrieval.search_schemas import SearchRequest
from retrieval.service import SearchService
from retrieval.store.base import IndexLockedError

QUESTION = "how many unused vacation days can be carried over"


def _reindexer(settings, store, encoders, parser_pool) -> AliasReindexer:
    return AliasReindexer(settings, store, *encoders, parser_pool=parser_pool)


def _search_paths(service: SearchService) -> list[str]:
    response = service.search(SearchRequest(query=QUESTION, top_k=3), PUBLIC)
    return [hit.path for hit in response.hits]


def _ids(store, collection: str) -> set[str]:
    return {p.id for p in store.scroll(collection, fields=["doc_id"])}


@pytest.mark.parametrize("kind", ["edge", "server"])
def test_reindex_switches_the_alias_and_search_never_stops(kind, tmp_path, encoders, corpus_dir, parser_pool):
    folders = [corpus_dir["company"], corpus_dir["finance"]]
    data_dir = tmp_path / "index"
    writer = open_backend(kind, data_dir)
    v1_settings = retrieval_settings(data_dir, collection="kb", chunk_tokens=80, chunk_overlap=16)

    # v1: a first index behind the alias
    first = _reindexer(v1_settings, writer, encoders, parser_pool).run(folders)
    v1 = first.collection
    assert first.previous is None and v1.startswith("kb-")
    assert writer.aliases() == {"kb": v1, "kb__files": files_collection(v1)}
    assert all(not r.failures for r in first.ingests)

    # the reader: another store on the same index where the engine allows it (the embedded
    # engine locks folders per store, like a second process); one shared client on the server
    reader = open_backend(kind, data_dir) if kind == "edge" else writer
    dense, sparse = encoders
    service = SearchService(v1_settings, reader, dense, sparse, NoReranker())
    before = _search_paths(service)
    assert before[0] in ("handbook/vacation-policy.md", "archive/vacation-policy-2023.md")
    v1_chunks = reader.count("kb")

    # a re-index that would silently lose the finance source is refused before any work
    with pytest.raises(ReindexError, match="finance"):
        _reindexer(v1_settings, writer, encoders, parser_pool).run([corpus_dir["company"]])
    assert set(writer.list_collections()) == {v1, files_collection(v1)}

    # v2: other chunk settings, built beside v1, then switched to; the old one dropped if free
    v2_settings = v1_settings.model_copy(update={"chunk_tokens": 160, "chunk_overlap": 32})
    second = _reindexer(v2_settings, writer, encoders, parser_pool).run(folders, drop_old=True)
    v2 = second.collection
    assert second.previous == v1 and v2 != v1
    assert writer.aliases() == {"kb": v2, "kb__files": files_collection(v2)}

    # the service opened before the switch answers through the alias, from v2 now
    after = service.search(SearchRequest(query=QUESTION, top_k=3), PUBLIC)
    assert after.hits and after.hits[0].path in ("handbook/vacation-policy.md", "archive/vacation-policy-2023.md")
    assert {hit.id for hit in after.hits} <= _ids(reader, v2)
    assert reader.count("kb") == reader.count(v2) != v1_chunks  # bigger chunks: fewer of them

    if kind == "edge":
        # the reader still holds v1 open, like a server that served it: kept, with the reason
        assert second.dropped == [] and "open in another process" in second.kept_previous
        assert v1 in writer.list_collections()
        with pytest.raises(IndexLockedError):
            writer.count(v1)
        reader.close()
        drop_collection(writer, v1)  # `cairn index drop` once that process is gone
    else:
        assert second.dropped == [v1]
    assert set(writer.list_collections()) == {v2, files_collection(v2)}

    # incremental ingest through the alias finds v2's file records: nothing to redo
    pipeline = IngestPipeline(v2_settings, writer, dense, sparse, parser_pool=parser_pool)
    report = pipeline.run(corpus_dir["company"], source="company")
    assert report.collection == "kb"
    assert report.chunks.written == 0
    assert report.files.unchanged == len([p for p in COMPANY_FILES if p != "cairn-acl.yaml"])
    assert report.files.added == report.files.updated == report.files.deleted == 0
    writer.close()


@pytest.mark.parametrize("kind", ["edge", "server"])
def test_a_plain_collection_becomes_an_alias(kind, tmp_path, encoders, corpus_dir, parser_pool):
    data_dir = tmp_path / "index"
    store = open_backend(kind, data_dir)
    settings = retrieval_settings(data_dir, collection="kb")
    IngestPipeline(settings, store, *encoders, parser_pool=parser_pool).run(corpus_dir["finance"], source="finance")
    assert alias_target(store, "kb").plain

    with pytest.raises(ReindexError, match="--drop-old"):
        _reindexer(settings, store, encoders, parser_pool).run([corpus_dir["finance"]])
    report = _reindexer(settings, store, encoders, parser_pool).run([corpus_dir["finance"]], drop_old=True)

    assert report.previous == "kb" and report.dropped == ["kb"]
    assert store.aliases() == {"kb": report.collection, "kb__files": files_collection(report.collection)}
    assert "kb" not in store.list_collections()
    assert store.count("kb") == store.count(report.collection) > 0
    store.close()


@pytest.mark.parametrize("kind", ["edge", "server"])
def test_a_failed_build_leaves_the_alias_and_no_debris(kind, tmp_path, encoders, parser_pool):
    empty = tmp_path / "empty"
    empty.mkdir()
    store = open_backend(kind, tmp_path / "index")
    settings = retrieval_settings(tmp_path / "index", collection="kb")
    with pytest.raises(ReindexError, match="nothing could be indexed"):
        _reindexer(settings, store, encoders, parser_pool).run([empty])
    assert store.list_collections() == [] and store.aliases() == {}
    store.close()


def test_build_then_switch_then_roll_back(tmp_path, encoders, corpus_dir, parser_pool):
    """Build without switching (a model upgrade), switch, roll back with one switch; a collection
    an alias still uses cannot be dropped."""
    store = open_backend("edge", tmp_path / "index")
    settings = retrieval_settings(tmp_path / "index", collection="kb")
    v1 = _reindexer(settings, store, encoders, parser_pool).run([corpus_dir["finance"]]).collection
    v2_settings = settings.model_copy(update={"chunk_tokens": 120, "chunk_overlap": 20})
    built = _reindexer(v2_settings, store, encoders, parser_pool).run([corpus_dir["finance"]], switch=False)
    v2 = built.collection
    assert not built.switched and built.previous == v1
    assert store.aliases()["kb"] == v1 and v2 in store.list_collections()  # built beside, not switched
    switch_alias(store, "kb", v2)
    assert store.aliases() == {"kb": v2, "kb__files": files_collection(v2)}
    with pytest.raises(ReindexError, match="still in use"):
        drop_collection(store, v2)
    switch_alias(store, "kb", v1)
    assert store.aliases() == {"kb": v1, "kb__files": files_collection(v1)}
    drop_collection(store, v2)
    assert set(store.list_collections()) == {v1, files_collection(v1)}
    with pytest.raises(ReindexError, match="not a collection"):
        switch_alias(store, "kb", v2)
    store.close()


def test_cli_reindex_switch_list_drop(tmp_path, corpus_dir, monkeypatch):
    """`cairn index reindex|list|switch|drop` on the embedded index, as a user runs them."""
    from cairn.cli import app

    monkeypatch.chdir(tmp_path)  # no stray .env
    docs = tmp_path / "finance"
    shutil.copytree(corpus_dir["finance"], docs)
    env = {"CAIRN_DATA_DIR": str(tmp_path / "index"), "CAIRN_COLLECTION": "kb", "QDRANT_URL": ""}
    runner = CliRunner()

    first = runner.invoke(app, ["index", "reindex", str(docs), "--json"], env=env)
    assert first.exit_code == 0, first.output
    v1 = json.loads(first.stdout)["collection"]
    second = runner.invoke(app, ["index", "reindex", str(docs), "--json"], env=env | {"CAIRN_CHUNK_TOKENS": "120"})
    assert second.exit_code == 0, second.output
    report = json.loads(second.stdout)
    assert report["previous"] == v1 and "rollback" in report["kept_previous"]

    listed = json.loads(runner.invoke(app, ["index", "list", "--json"], env=env).stdout)
    assert listed["aliases"]["kb"] == report["collection"]
    assert set(listed["collections"]) == {v1, report["collection"], files_collection(v1), files_collection(report["collection"])}

    refused = runner.invoke(app, ["index", "drop", report["collection"], "--yes"], env=env)
    assert refused.exit_code == 2 and "still in use" in refused.output
    assert runner.invoke(app, ["index", "switch", v1], env=env).exit_code == 0
    assert runner.invoke(app, ["index", "drop", report["collection"], "--yes"], env=env).exit_code == 0
    listed = json.loads(runner.invoke(app, ["index", "list", "--json"], env=env).stdout)
    assert listed["aliases"] == {"kb": v1, "kb__files": files_collection(v1)}
    assert set(listed["collections"]) == {v1, files_collection(v1)}

    missing = runner.invoke(app, ["index", "reindex", str(tmp_path / "nope")], env=env)
    assert missing.exit_code == 2 and "is not a folder" in missing.output
