"""An eval set's corpus indexed by the real ingest pipeline, once per corpus and ingest settings.

Each index lives in its own embedded store under ``CACHE_ROOT/<set>-<key>``, where the key
hashes the corpus (paths and bytes) and the ingest fingerprint (embedding model, chunk size
and overlap, BM25 length, chunker version). A marker file is written only after a run that
indexed every file; while it matches, the index is reused without touching the corpus again.
A run that had failures leaves no marker, so the next one retries just the failed files
(ingestion is incremental).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from evals.dataset import EvalSet
from ingest.pipeline import IngestPipeline, IngestProgress, fingerprint_of
from retrieval.encoders import DenseEncoder, SparseEncoder
from retrieval.settings import Settings
from retrieval.store.base import IndexStore
from retrieval.store.edge import EdgeStore

DEFAULT_CACHE_ROOT = Path(".cache/evals")  # git-ignored
EVAL_COLLECTION = "eval"
MARKER = "index.json"


def cache_key(corpus_digest: str, settings: Settings) -> str:
    return hashlib.sha256(f"{corpus_digest}\x00{fingerprint_of(settings)}".encode()).hexdigest()[:12]


@dataclass
class CachedIndex:
    folder: Path
    key: str
    settings: Settings  # data_dir and collection point at this index
    store: IndexStore
    reused: bool
    chunks: int
    files: int
    failures: list[dict[str, str]] = field(default_factory=list)  # {"path", "error"} of this run

    def close(self) -> None:
        self.store.close()


class IndexCache:
    def __init__(self, root: Path = DEFAULT_CACHE_ROOT) -> None:
        self.root = Path(root)

    def folder_for(self, evalset: EvalSet, corpus_digest: str, settings: Settings) -> Path:
        return self.root / f"{evalset.name}-{cache_key(corpus_digest, settings)}"

    def open(
        self,
        evalset: EvalSet,
        corpus_digest: str,
        settings: Settings,
        dense: DenseEncoder,
        sparse: SparseEncoder,
        progress: IngestProgress | None = None,
    ) -> CachedIndex:
        """The set's index for ``settings``' ingest fingerprint: reused, or built (or completed) now.

        Always the embedded store, whatever QDRANT_URL says: an eval must not write into a
        shared server.
        """
        folder = self.folder_for(evalset, corpus_digest, settings)
        local = settings.model_copy(update={"data_dir": folder, "collection": EVAL_COLLECTION, "qdrant_url": None})
        key = folder.name.rsplit("-", 1)[1]
        marker = folder / MARKER
        store = EdgeStore(folder)
        try:
            recorded = json.loads(marker.read_text()) if marker.exists() else None
            if (
                recorded
                and recorded.get("corpus_hash") == corpus_digest
                and recorded.get("fingerprint") == fingerprint_of(local)
                and store.collection_exists(EVAL_COLLECTION)
            ):
                return CachedIndex(folder, key, local, store, True, recorded["chunks"], recorded["files"])

            marker.unlink(missing_ok=True)
            report = IngestPipeline(local, store, dense, sparse).run(
                evalset.corpus_dir, source=evalset.name, delete_missing=True, progress=progress
            )
            files = report.files.added + report.files.updated + report.files.unchanged
            failures = [f.model_dump() for f in report.failures]
            if report.ok:  # the marker of success, written after the success
                marker.write_text(
                    json.dumps(
                        {
                            "corpus_hash": corpus_digest,
                            "fingerprint": fingerprint_of(local),
                            "ingest_settings": local.ingest_fingerprint(),
                            "chunks": report.chunks.total,
                            "files": files,
                            "ingest_seconds": report.seconds,
                            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        },
                        indent=2,
                    )
                )
            return CachedIndex(folder, key, local, store, False, report.chunks.total, files, failures)
        except BaseException:
            store.close()
            raise
