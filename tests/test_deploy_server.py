"""The server path (QDRANT_URL set) as a Qdrant server sees it: collection config from settings,
payload indexes, aliases, API key, and `cairn index snapshot` — against a fake Qdrant HTTP
server, since qdrant-client's local mode ignores shards, on-disk flags, payload indexes and
snapshots (it stores them nowhere and reports none)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from retrieval.index_schema import FLOAT_INDEXES, KEYWORD_INDEXES
from retrieval.settings import Settings
from retrieval.store import open_store

API_KEY = "test-key-0123456789abcdef"


def _server_settings(url: str, **overrides) -> Settings:
    base = dict(qdrant_url=url, qdrant_api_key=API_KEY, collection="kb")
    return Settings(_env_file=None, **(base | overrides))


def test_collections_carry_shards_replicas_and_on_disk_from_settings(fake_qdrant):
    settings = _server_settings(fake_qdrant.url, qdrant_shards=3, qdrant_replication_factor=2, qdrant_on_disk=True)
    store = open_store(settings.storage)
    try:
        store.create_chunk_collection("kb-v1", 384)
        store.create_record_collection("kb-v1__files")
    finally:
        store.close()
    chunks = fake_qdrant.collections["kb-v1"]
    assert chunks["shard_number"] == 3
    assert chunks["replication_factor"] == 2
    assert chunks["on_disk_payload"] is True
    assert chunks["vectors"]["dense"] == {"size": 384, "distance": "Cosine", "on_disk": True}
    assert chunks["sparse_vectors"]["bm25"] == {"index": {"on_disk": True}, "modifier": "idf"}
    records = fake_qdrant.collections["kb-v1__files"]
    assert (records["shard_number"], records["replication_factor"]) == (3, 2)
    # every request carried the API key
    assert all(r["headers"].get("api-key") == API_KEY for r in fake_qdrant.requests)


def test_single_node_defaults(fake_qdrant):
    store = open_store(_server_settings(fake_qdrant.url).storage)
    store.create_chunk_collection("kb-v1", 384)
    store.close()
    chunks = fake_qdrant.collections["kb-v1"]
    assert (chunks["shard_number"], chunks["replication_factor"]) == (1, 1)
    assert not chunks.get("on_disk_payload") and not chunks["vectors"]["dense"].get("on_disk")


def test_payload_indexes_are_created(fake_qdrant):
    store = open_store(_server_settings(fake_qdrant.url).storage)
    store.create_chunk_collection("kb-v1", 384)
    store.create_record_collection("kb-v1__files")
    store.close()
    expected = {f: "keyword" for f in KEYWORD_INDEXES} | {f: "float" for f in FLOAT_INDEXES}
    assert fake_qdrant.indexes["kb-v1"] == expected
    assert {"groups", "doc_id", "path", "modified_ts"} <= set(expected)  # what filters and access use
    assert fake_qdrant.indexes["kb-v1__files"] == {"source": "keyword"}


def test_alias_switch_is_one_atomic_request(fake_qdrant):
    from ingest.reindex import switch_alias

    store = open_store(_server_settings(fake_qdrant.url).storage)
    for name in ("kb-v1", "kb-v2"):
        store.create_chunk_collection(name, 384)
        store.create_record_collection(name + "__files")
    switch_alias(store, "kb", "kb-v1")
    fake_qdrant.requests.clear()
    switch_alias(store, "kb", "kb-v2")
    store.close()
    assert fake_qdrant.aliases == {"kb": "kb-v2", "kb__files": "kb-v2__files"}
    posts = [r["body"]["actions"] for r in fake_qdrant.requests if r["path"] == "/collections/aliases"]
    # each alias moves in one request: delete + create together, so no reader sees it missing
    assert posts == [
        [{"delete_alias": {"alias_name": "kb__files"}}, {"create_alias": {"collection_name": "kb-v2__files", "alias_name": "kb__files"}}],
        [{"delete_alias": {"alias_name": "kb"}}, {"create_alias": {"collection_name": "kb-v2", "alias_name": "kb"}}],
    ]


def _cli(args: list[str], env: dict[str, str]):
    from cairn.cli import app

    return CliRunner().invoke(app, args, env=env)


def test_snapshot_create_and_list_on_the_server(fake_qdrant, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no stray .env
    store = open_store(_server_settings(fake_qdrant.url).storage)
    store.create_chunk_collection("kb-v1", 384)
    store.create_record_collection("kb-v1__files")
    store.set_alias("kb", "kb-v1")
    store.close()
    env = {"QDRANT_URL": fake_qdrant.url, "QDRANT_API_KEY": API_KEY, "CAIRN_COLLECTION": "kb"}

    created = _cli(["index", "snapshot", "create", "--json"], env)
    assert created.exit_code == 0, created.output
    made = json.loads(created.stdout)
    # the alias is resolved: the real collection and its records are snapshotted
    assert [s["collection"] for s in made] == ["kb-v1", "kb-v1__files"]
    assert all(s["location"] == "server" and s["name"].endswith(".snapshot") for s in made)
    snapshot_posts = [r["path"] for r in fake_qdrant.requests if r["method"] == "POST" and r["path"].endswith("/snapshots")]
    assert snapshot_posts == ["/collections/kb-v1/snapshots", "/collections/kb-v1__files/snapshots"]

    assert _cli(["index", "snapshot", "create", "--json"], env).exit_code == 0
    listed = _cli(["index", "snapshot", "list", "--json"], env)
    assert listed.exit_code == 0, listed.output
    names = [s["name"] for s in json.loads(listed.stdout) if s["collection"] == "kb-v1"]
    assert len(names) == 2 and len(set(names)) == 2


def test_snapshot_of_a_missing_collection_says_what_to_do(fake_qdrant, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _cli(["index", "snapshot", "create"], {"QDRANT_URL": fake_qdrant.url, "CAIRN_COLLECTION": "nothing"})
    assert result.exit_code == 3
    assert "collection 'nothing' does not exist" in result.output and "cairn index list" in result.output


def test_unreachable_server_says_how_to_start_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _cli(["index", "list"], {"QDRANT_URL": "http://127.0.0.1:9", "CAIRN_COLLECTION": "kb"})
    assert result.exit_code == 3
    assert "docker compose up -d qdrant" in result.output
