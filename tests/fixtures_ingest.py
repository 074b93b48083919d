"""Fixtures for the ingestion tests: both storage backends on disk, and a pipeline factory."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"
PYTHON_FAQ = REPO.parent / "shared" / "evalsets" / "python-faq" / "corpus"


def open_backend(kind: str, data_dir: Path):
    """The embedded engine, or the server client in local mode, both persisting to data_dir."""
    if kind == "edge":
        from retrieval.store.edge import EdgeStore

        return EdgeStore(data_dir / "edge")
    from qdrant_client import QdrantClient

    from retrieval.store.server import ServerStore

    return ServerStore(QdrantClient(path=str(data_dir / "server")))


def ingest_settings(data_dir: Path, **overrides):
    from retrieval.settings import Settings

    base = dict(data_dir=data_dir / "edge", collection="docs", chunk_tokens=120, chunk_overlap=24)
    return Settings(**(base | overrides))


class Ingester:
    """One backend plus a pipeline on it; ``run`` ingests a folder and returns the report."""

    def __init__(self, kind: str, data_dir: Path, encoders, parser_pool=None, **overrides) -> None:
        from ingest.pipeline import IngestPipeline

        self.kind = kind
        self.settings = ingest_settings(data_dir, **overrides)
        self.store = open_backend(kind, data_dir)
        self.pipeline = IngestPipeline(self.settings, self.store, *encoders, parser_pool=parser_pool)

    def run(self, root: Path, **kwargs):
        return self.pipeline.run(root, **kwargs)

    def chunks(self, **filters) -> list[dict]:
        from retrieval.index_schema import Filter, MatchAny

        flt = Filter(must=tuple(MatchAny(k, (v,)) for k, v in filters.items())) if filters else None
        return [p.payload | {"id": p.id} for p in self.store.scroll(self.settings.collection, flt)]

    def close(self) -> None:
        self.pipeline.close()
        self.store.close()


@pytest.fixture(scope="session")
def parser_pool():
    """One parser process for the whole session: each new one imports unstructured anew."""
    from ingest.parser_pool import ParserPool

    with ParserPool(workers=1, timeout_s=120) as pool:
        yield pool


@pytest.fixture(params=["edge", "server"])
def ingester(request, tmp_path, encoders, parser_pool):
    ingester = Ingester(request.param, tmp_path / "index", encoders, parser_pool=parser_pool)
    yield ingester
    ingester.close()


@pytest.fixture(scope="session", params=["edge", "server"])
def sample_index(request, tmp_path_factory, encoders, parser_pool):
    """data/sample ingested once per backend: (ingester, report)."""
    ingester = Ingester(request.param, tmp_path_factory.mktemp(f"sample-{request.param}"), encoders, parser_pool=parser_pool)
    report = ingester.run(SAMPLE)
    yield ingester, report
    ingester.close()
