"""What replaces server features on the embedded engine: tar snapshots taken under the engine's
lock (and restored with tar), payload indexes the engine really builds."""

from __future__ import annotations

import json
import shutil
import tarfile

import pytest
import qdrant_edge as qe
from fixtures_deploy import open_backend
from fixtures_retrieval import retrieval_settings
from typer.testing import CliRunner

from ingest.reindex import AliasReindexer
from retrieval.index_schema import FLOAT_INDEXES, KEYWORD_INDEXES, files_collection


@pytest.fixture
def alias_index(tmp_path, encoders, corpus_dir, parser_pool):
    """The finance source indexed behind the alias `kb`; store closed. -> (data_dir, collection)."""
    data_dir = tmp_path / "index"
    store = open_backend("edge", data_dir)
    settings = retrieval_settings(data_dir, collection="kb")
    report = AliasReindexer(settings, store, *encoders, parser_pool=parser_pool).run([corpus_dir["finance"]])
    store.close()
    return data_dir, report.collection


def _cli(args, data_dir):
    from cairn.cli import app

    env = {"CAIRN_DATA_DIR": str(data_dir), "CAIRN_COLLECTION": "kb", "QDRANT_URL": ""}
    return CliRunner().invoke(app, args, env=env)


def test_snapshot_create_list_and_restore(alias_index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data_dir, collection = alias_index
    store = open_backend("edge", data_dir)
    points = {p.id: p.payload for p in store.scroll("kb")}
    records = store.count("kb__files")
    store.close()

    created = _cli(["index", "snapshot", "create", "--json"], data_dir)
    assert created.exit_code == 0, created.output
    made = json.loads(created.stdout)
    assert [s["collection"] for s in made] == [collection, files_collection(collection)]
    listed = json.loads(_cli(["index", "snapshot", "list", "--json"], data_dir).stdout)
    assert listed == made

    # lose the index, restore it the documented way (tar -xzf into the data folder)
    for name in (collection, files_collection(collection)):
        shutil.rmtree(data_dir / name)
    for snapshot in made:
        with tarfile.open(snapshot["location"]) as tar:
            tar.extractall(data_dir, filter="data")
    store = open_backend("edge", data_dir)
    assert {p.id: p.payload for p in store.scroll("kb")} == points
    assert store.count("kb__files") == records
    store.close()


def test_snapshot_refuses_an_index_another_process_holds(alias_index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data_dir, _ = alias_index
    holder = open_backend("edge", data_dir)
    holder.count("kb")  # like a running `cairn serve`
    try:
        result = _cli(["index", "snapshot", "create"], data_dir)
    finally:
        holder.close()
    assert result.exit_code == 3
    assert "open in another process" in result.output
    assert not list((data_dir / "snapshots").glob("*.tar.gz"))


def test_the_engine_builds_the_payload_indexes(alias_index):
    data_dir, collection = alias_index
    shard = qe.EdgeShard.load(str(data_dir / collection))
    try:
        schema = shard.info().payload_schema
    finally:
        shard.close()
    assert set(schema) == set(KEYWORD_INDEXES) | set(FLOAT_INDEXES)
    assert schema["modified_ts"].data_type == qe.PayloadSchemaType.Float
    assert schema["groups"].data_type == qe.PayloadSchemaType.Keyword
