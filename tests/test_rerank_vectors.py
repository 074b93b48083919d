"""The reranking model's vectors stored in the index: filled after ingestion, equal to the model's
encoding of each chunk's indexed text, kept in step with edits and deletions, resumed after a
kill -9, and read by the reranker (with on-the-fly encoding for chunks not filled yet). Both
backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from fixtures_ingest import REPO, Ingester, open_backend
from fixtures_live import write_policies
from fixtures_retrieval import MPNET, PUBLIC

from ingest.jobs import IngestJobs
from ingest.rerank_fill import RerankVectorFill
from retrieval.index_schema import Filter, HasVector, passage_text, rerank_vector_name
from retrieval.index_stats import index_stats
from retrieval.rerank import EmbeddingReranker
from retrieval.search_schemas import SearchRequest
from retrieval.service import SearchService

QUERY = "which clause explains rule 7 of policy 2"


def make_corpus(root: Path, files: int = 4) -> Path:
    write_policies(root, files, sections=2, sentences=6)
    return root


@pytest.fixture(params=["edge", "server"])
def ingested(request, tmp_path, encoders, parser_pool):
    ingester = Ingester(request.param, tmp_path / "index", encoders, parser_pool=parser_pool, chunk_tokens=60, chunk_overlap=8)
    folder = make_corpus(tmp_path / "docs")
    assert not ingester.run(folder).failures
    yield ingester, folder
    ingester.close()


def _filled(ingester: Ingester, vector: str) -> int:
    return ingester.store.count(ingester.settings.collection, Filter(must=(HasVector(vector),)))


def test_fill_stores_the_models_encoding_of_each_chunks_indexed_text(ingested, mpnet_reranker):
    ingester, _ = ingested
    store, collection = ingester.store, ingester.settings.collection
    fill = RerankVectorFill(store, collection, mpnet_reranker.encoder, batch_size=5)
    assert fill.vector not in store.vector_sizes(collection)  # ingestion wrote the first stage only

    report = fill.run()

    chunks = list(store.scroll(collection))
    assert report.complete and report.encoded == len(chunks) > 5  # several batches
    assert store.vector_sizes(collection)[fill.vector] == mpnet_reranker.encoder.dimension
    texts = [passage_text(p.payload["title"], p.payload["section"], p.payload["text"]) for p in chunks]
    expected = mpnet_reranker.encoder.encode_documents(texts)
    for point, vector in zip(chunks, expected):
        # Qdrant's cosine of the stored vector and the model's fresh encoding of the same text
        assert store.rescore(collection, fill.vector, vector.tolist(), [point.id])[point.id] == pytest.approx(1.0, abs=1e-5)
    stats = index_stats(store, collection, MPNET).rerank_vectors
    assert stats is not None and stats.filled == stats.chunks == len(chunks) and stats.complete
    assert fill.run().encoded == 0  # nothing left: a re-run encodes nothing


def test_edits_and_deletions_keep_the_vectors_in_step(ingested, mpnet_reranker):
    ingester, folder = ingested
    store, collection = ingester.store, ingester.settings.collection
    fill = RerankVectorFill(store, collection, mpnet_reranker.encoder)
    fill.run()

    (folder / "policy-01.md").write_text("# Policy 1\n\nThe new clause says every laptop is returned on the last day.\n")
    (folder / "policy-02.md").unlink()
    report = ingester.run(folder)
    assert report.files.updated == 1 and report.files.deleted == 1

    edited = ingester.chunks(path="policy-01.md")
    assert fill.pending() == len(edited)  # only the edited file's new chunks lack the vector
    assert fill.run().encoded == len(edited)
    assert fill.pending() == 0
    assert _filled(ingester, fill.vector) == store.count(collection)  # the deleted file took its vectors along
    assert not ingester.chunks(path="policy-02.md")


def test_a_change_of_reranking_model_drops_the_old_vectors(ingested, mpnet_reranker, encoders):
    ingester, _ = ingested
    store, collection = ingester.store, ingester.settings.collection
    RerankVectorFill(store, collection, mpnet_reranker.encoder).run()
    minilm = encoders[0]  # another model: its own vector name
    other = RerankVectorFill(store, collection, minilm)
    other.run()
    assert rerank_vector_name(MPNET) not in store.vector_sizes(collection)
    assert store.vector_sizes(collection)[other.vector] == minilm.dimension
    assert other.pending() == 0


def test_search_reads_the_stored_vectors_and_encodes_what_is_not_filled(ingested, mpnet_reranker, encoders):
    ingester, _ = ingested
    store, settings = ingester.store, ingester.settings.model_copy(update={"rerank_depth": 20})
    service = SearchService(settings, store, *encoders, mpnet_reranker)
    request = SearchRequest(query=QUERY, top_k=20)
    on_the_fly = service.search(request, PUBLIC)  # no vectors stored yet
    assert on_the_fly.rerank.applied

    fill = RerankVectorFill(store, settings.collection, mpnet_reranker.encoder, batch_size=4)
    fill.prepare()
    fill.step()  # partly filled: 4 chunks hold the vector
    assert 0 < _filled(ingester, fill.vector) < store.count(settings.collection)
    mpnet_reranker.clear_cache()  # the partly filled run must not read the first run's encodings
    partly = service.search(request, PUBLIC)
    fill.run()
    mpnet_reranker.clear_cache()
    stored = service.search(request, PUBLIC)

    def scores(response):
        return {h.id: h.scores.rerank.score for h in response.hits if h.scores.rerank}

    assert [h.id for h in partly.hits] == [h.id for h in on_the_fly.hits] == [h.id for h in stored.hits]
    for response in (partly, stored):
        got = scores(response)
        for chunk_id, score in scores(on_the_fly).items():
            assert got[chunk_id] == pytest.approx(score, abs=1e-5)
    assert mpnet_reranker.cached_passages == 0  # everything came from the index: nothing was encoded per chunk


# Fills in a child process, printing a line per batch written, so the test can kill it mid-fill.
CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, "tests")
    from fixtures_ingest import open_backend
    from ingest.rerank_fill import RerankVectorFill
    from retrieval.encoders import DenseEncoder

    kind, data_dir, collection = sys.argv[1:4]
    store = open_backend(kind, Path(data_dir))
    fill = RerankVectorFill(store, collection, DenseEncoder("sentence-transformers/all-mpnet-base-v2"), batch_size=2)
    class Progress:
        def filled(self, done, total):
            print("filled", done, total, flush=True)
    fill.run(Progress())
    print("finished", flush=True)
    """
)


def test_kill_9_mid_fill_then_resume_completes_it(tmp_path, encoders, parser_pool, mpnet_reranker):
    for kind in ("edge", "server"):
        data_dir = tmp_path / kind
        ingester = Ingester(kind, data_dir, encoders, parser_pool=parser_pool, chunk_tokens=60, chunk_overlap=8)
        assert not ingester.run(make_corpus(tmp_path / "docs")).failures
        collection, total = ingester.settings.collection, ingester.store.count(ingester.settings.collection)
        ingester.close()  # the child opens the index

        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, kind, str(data_dir), collection],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        for line in child.stdout:
            if line.startswith("filled") and int(line.split()[1]) >= 4:
                os.kill(child.pid, signal.SIGKILL)  # the next batch is being encoded or written
                break
        child.wait(timeout=300)
        assert child.returncode == -signal.SIGKILL

        store = open_backend(kind, data_dir)
        try:
            fill = RerankVectorFill(store, collection, mpnet_reranker.encoder)
            left = fill.pending()
            assert 0 < left <= total - 4  # the batches written before the kill are kept
            report = fill.run()
            assert report.complete and report.encoded == left
            point = next(iter(store.scroll(collection, limit=1)))
            vector = mpnet_reranker.encoder.encode_documents(
                [passage_text(point.payload["title"], point.payload["section"], point.payload["text"])]
            )[0]
            assert store.rescore(collection, fill.vector, vector.tolist(), [point.id])[point.id] == pytest.approx(1.0, abs=1e-5)
        finally:
            store.close()


def test_the_job_runner_fills_between_jobs_and_a_job_goes_first(tmp_path, encoders, mpnet_reranker, parser_pool):
    from fixtures_ingest import ingest_settings

    settings = ingest_settings(tmp_path, chunk_tokens=60, chunk_overlap=8, rerank_fill_batch=2)
    store = open_backend("edge", tmp_path)
    jobs = IngestJobs(settings, store, *encoders, parser_pool=parser_pool, rerank_encoder=mpnet_reranker.encoder)
    try:
        assert jobs.fill_status().state == "complete"  # nothing indexed: nothing to fill
        assert jobs.wait(jobs.submit(make_corpus(tmp_path / "a")).id, timeout=300).state == "done"
        # the fill has started, 2 chunks a batch; a job submitted now runs at the next batch's end
        second = jobs.wait(jobs.submit(make_corpus(tmp_path / "b", files=2)).id, timeout=300)
        assert second.state == "done"
        midway = jobs.fill_status()
        assert midway.state == "filling" and midway.filled < midway.chunks
        status = jobs.wait_fill(timeout=300)
        assert status.state == "complete" and status.filled == status.chunks == store.count(settings.collection)
        assert status.model == MPNET
    finally:
        jobs.close()
        store.close()


def test_rescore_skips_ids_without_the_vector_on_both_backends(ingested, mpnet_reranker):
    ingester, _ = ingested
    store, collection = ingester.store, ingester.settings.collection
    fill = RerankVectorFill(store, collection, mpnet_reranker.encoder, batch_size=3)
    fill.prepare()
    fill.step()
    ids = [p.id for p in store.scroll(collection)]
    query = np.asarray(mpnet_reranker.encoder.encode_query(QUERY))
    scores = store.rescore(collection, fill.vector, query.tolist(), ids)
    assert len(scores) == 3 and set(scores) <= set(ids)


def test_cairn_ingest_waits_for_the_vectors_unless_told_to_leave_them(tmp_path):
    from test_search_cli import cairn

    from retrieval.settings import Settings

    settings = Settings(data_dir=tmp_path / "index", collection="docs", chunk_tokens=60, chunk_overlap=8)
    folder = make_corpus(tmp_path / "docs", files=2)

    def stats() -> dict:
        result = cairn(settings, "index", "stats", "--json", CAIRN_RERANKER="embedding")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["rerank_vectors"]

    later = cairn(settings, "ingest", str(folder), "--fill-later", CAIRN_RERANKER="embedding")
    assert later.returncode == 0, later.stderr
    left = stats()
    assert left["model"] == MPNET and left["filled"] == 0 < left["chunks"]

    waited = cairn(settings, "ingest", str(folder), CAIRN_RERANKER="embedding")  # nothing changed: only the vectors are missing
    assert waited.returncode == 0, waited.stderr
    assert f"Reranking vectors: {left['chunks']} of {left['chunks']} chunks" in waited.stderr
    filled = stats()
    assert filled["filled"] == filled["chunks"] == left["chunks"]


def test_the_service_reports_the_fill_to_administrators_and_in_health(tmp_path, encoders, parser_pool, mpnet_reranker):
    from fastapi.testclient import TestClient
    from fixtures_live import ADMIN_KEY, STAFF_KEY, identities, open_store

    from cairn.api.app import create_app
    from cairn.api.serving import serving
    from fixtures_retrieval import retrieval_settings
    from runtime import assemble_runtime

    settings = retrieval_settings(
        tmp_path / "index", reranker="embedding", upload_dir=tmp_path / "uploads", ingest_roots=[tmp_path / "docs"],
        rerank_fill_batch=4,
    )  # fmt: skip
    runtime = assemble_runtime(settings, identities(), open_store("edge", tmp_path), *encoders, mpnet_reranker, parser_pool=parser_pool)
    make_corpus(tmp_path / "docs" / "policies", files=2)
    app = create_app(runtime.search, runtime.identities, answers=runtime.answers)
    try:
        with serving(app, runtime, "127.0.0.1", 8000), TestClient(app) as client:
            admin = {"X-API-Key": ADMIN_KEY}
            assert client.get("/ingest/rerank-vectors", headers={"X-API-Key": STAFF_KEY}).status_code == 403
            job = client.post("/ingest", json={"folder": str(tmp_path / "docs" / "policies")}, headers=admin).json()
            runtime.ingest_jobs.wait(job["id"], timeout=300)
            status = runtime.ingest_jobs.wait_fill(timeout=300)
            assert status.state == "complete"
            body = client.get("/ingest/rerank-vectors", headers=admin).json()
            assert body["state"] == "complete" and body["filled"] == body["chunks"] > 0 and body["model"] == MPNET
            health = client.get("/health").json()
            assert health["rerank_vectors_filled"] == health["chunks"] == body["chunks"]
    finally:
        runtime.close()


def test_a_reindex_stores_the_vectors_before_it_switches(tmp_path, encoders, parser_pool, mpnet_reranker):
    from fixtures_ingest import ingest_settings

    from ingest.reindex import AliasReindexer

    settings = ingest_settings(tmp_path, chunk_tokens=60, chunk_overlap=8)
    store = open_backend("edge", tmp_path)
    reindexer = AliasReindexer(settings, store, *encoders, parser_pool=parser_pool, rerank_encoder=mpnet_reranker.encoder)
    try:
        report = reindexer.run([make_corpus(tmp_path / "docs", files=2)])
        assert report.switched and store.aliases()[settings.collection] == report.collection
        progress = index_stats(store, settings.collection, MPNET).rerank_vectors  # read through the alias
        assert progress is not None and progress.filled == progress.chunks > 0
    finally:
        reindexer.close()
        store.close()
