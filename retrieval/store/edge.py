"""Embedded backend: the Qdrant engine in-process (qdrant-edge), one shard folder per collection."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import qdrant_edge as qe

from retrieval.encoders import SparseVec
from retrieval.index_schema import (
    DENSE_VECTOR,
    DOC_CHUNKS_KEY,
    FLOAT_INDEXES,
    KEYWORD_INDEXES,
    SPARSE_VECTOR,
    ChunkPoint,
    Filter,
    HybridQuery,
    HybridResult,
    HasVector,
    MatchAny,
    Range,
    ScoredPoint,
)
from retrieval.store.base import CollectionMissingError, IndexLockedError, StoreError

_RECORD_VECTOR = "none"  # records carry no vector; edge wants at least one vector name
_SCROLL_PAGE = 1000
_ALIASES_FILE = "aliases.json"


def _to_filter(spec: Filter | None) -> qe.Filter | None:
    if spec is None or not (spec.must or spec.must_not):
        return None

    def condition(c) -> qe.FieldCondition:
        if isinstance(c, MatchAny):
            return qe.FieldCondition(c.key, match=qe.MatchAny(list(c.values)))
        if isinstance(c, Range):
            return qe.FieldCondition(c.key, range=qe.RangeFloat(gte=c.gte, lte=c.lte))
        if isinstance(c, HasVector):
            return qe.HasVectorCondition(c.name)
        raise TypeError(f"unsupported filter condition {c!r}")

    return qe.Filter(
        must=[condition(c) for c in spec.must] or None,
        must_not=[condition(c) for c in spec.must_not] or None,
    )


def _scored(points) -> list[ScoredPoint]:
    return [ScoredPoint(id=str(p.id), score=float(p.score), payload=p.payload or {}) for p in points]


def _sparse(vec) -> qe.SparseVector:
    return qe.SparseVector(indices=list(vec.indices), values=list(vec.values))


def _fusion(spec) -> Any:
    if spec.kind == "dbsf":
        return qe.Fusion.Dbsf()
    weights = list(spec.weights) if spec.weights else None
    return qe.Fusion.Rrf(k=spec.k, weights=weights)


def _dense_stage(query: HybridQuery, flt: qe.Filter | None) -> tuple[qe.Prefetch, qe.QueryRequest]:
    """The dense retriever as a fusion prefetch and as a request of its own: nearest chunks, or
    with a length prior, the `length_pool` nearest rescored by Qdrant's formula query."""
    nearest = qe.Query.Nearest(list(query.dense), using=DENSE_VECTOR)
    n = query.prefetch_limit
    if query.length_prior <= 0:
        return (
            qe.Prefetch(limit=n, query=nearest, filter=flt),
            qe.QueryRequest(limit=n, query=nearest, filter=flt, with_payload=True),
        )
    pool = [qe.Prefetch(limit=max(query.length_pool, n), query=nearest, filter=flt)]
    E = qe.Expression
    penalty = E.Mult([E.Constant(-query.length_prior), E.Ln(E.Variable(DOC_CHUNKS_KEY))])
    formula = qe.Formula(E.Sum([E.Variable("$score"), penalty]), defaults={DOC_CHUNKS_KEY: 1})
    return (
        qe.Prefetch(limit=n, query=formula, prefetches=pool, filter=flt),
        qe.QueryRequest(limit=n, query=formula, prefetches=pool, filter=flt, with_payload=True),
    )


class EdgeStore:
    """Collections live in ``data_dir/<name>/``; the engine locks each folder it opens."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._shards: dict[str, qe.EdgeShard] = {}
        self._opening = threading.RLock()  # a search and an ingest job must not both open a shard

    # Queries from several threads on one shard give the same results as one at a time (the
    # engine locks internally; checked by tests/test_search_concurrency.py).
    concurrent_reads = True

    # --- collections -----------------------------------------------------------------
    def _path(self, name: str) -> Path:
        return self.data_dir / name

    def _resolve(self, collection: str) -> str:
        return self.aliases().get(collection, collection)

    def collection_exists(self, collection: str) -> bool:
        return (self._path(self._resolve(collection)) / "edge_config.json").exists() or (
            self._resolve(collection) in self._shards
        )

    def _shard(self, collection: str) -> qe.EdgeShard:
        name = self._resolve(collection)
        shard = self._shards.get(name)
        if shard is not None:
            return shard
        with self._opening:
            if name in self._shards:
                return self._shards[name]
            if not self.collection_exists(name):
                raise CollectionMissingError(
                    f"collection '{collection}' does not exist in {self.data_dir}: "
                    "run `cairn ingest FOLDER` first"
                )
            self._shards[name] = shard = self._open(lambda: qe.EdgeShard.load(str(self._path(name))))
            return shard

    def _open(self, opener) -> qe.EdgeShard:
        try:
            return opener()
        except Exception as exc:  # the engine raises a bare Exception with the OS error inside
            if "WouldBlock" in str(exc) or "lock" in str(exc).lower():
                raise IndexLockedError(
                    f"the index at {self.data_dir} is open in another process (a running "
                    "`cairn ui`, `cairn serve` or ingest). Stop that process and run the "
                    "command again, or point QDRANT_URL at a Qdrant server so several "
                    "processes can share the index."
                ) from exc
            raise StoreError(f"cannot open the index at {self.data_dir}: {exc}") from exc

    def _create(self, collection: str, config: qe.EdgeConfig) -> qe.EdgeShard:
        path = self._path(collection)
        with self._opening:
            if path.exists() and not (path / "edge_config.json").exists():
                shutil.rmtree(path)  # a creation interrupted before it wrote anything
            shard = self._open(lambda: qe.EdgeShard.create(str(path), config))
            self._shards[collection] = shard
        return shard

    def create_chunk_collection(self, collection: str, dense_size: int) -> None:
        shard = self._create(
            collection,
            qe.EdgeConfig(
                vectors={DENSE_VECTOR: qe.EdgeVectorParams(dense_size, qe.Distance.Cosine)},
                sparse_vectors={SPARSE_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            ),
        )
        for field in KEYWORD_INDEXES:
            shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword))
        for field in FLOAT_INDEXES:
            shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Float))
        shard.flush()

    def dense_size(self, collection: str) -> int:
        """Read from the collection's config file: no need to open (and lock) the shard."""
        return self.vector_sizes(collection)[DENSE_VECTOR]

    def vector_sizes(self, collection: str) -> dict[str, int]:
        config_file = self._path(self._resolve(collection)) / "edge_config.json"
        if not config_file.exists():
            raise CollectionMissingError(f"collection '{collection}' does not exist in {self.data_dir}")
        config = json.loads(config_file.read_text())
        return {name: int(params["size"]) for name, params in config["vectors"].items()}

    def add_vector(self, collection: str, name: str, size: int) -> None:
        shard = self._shard(collection)
        shard.update(qe.UpdateOperation.create_dense_vector(name, size, qe.Distance.Cosine))
        shard.flush()

    def delete_vector(self, collection: str, name: str) -> None:
        shard = self._shard(collection)
        shard.update(qe.UpdateOperation.delete_vector_name(name))
        shard.flush()

    def create_record_collection(self, collection: str) -> None:
        shard = self._create(
            collection,
            qe.EdgeConfig(sparse_vectors={_RECORD_VECTOR: qe.EdgeSparseVectorParams()}),
        )
        shard.update(qe.UpdateOperation.create_field_index("source", qe.PayloadSchemaType.Keyword))
        shard.flush()

    def delete_collection(self, collection: str) -> None:
        name = self._resolve(collection)
        shard = self._shards.pop(name, None)
        if shard is not None:
            shard.close()
        shutil.rmtree(self._path(name), ignore_errors=True)

    def list_collections(self) -> list[str]:
        return sorted(p.parent.name for p in self.data_dir.glob("*/edge_config.json"))

    # --- writes ----------------------------------------------------------------------
    def upsert_chunks(self, collection: str, points: Sequence[ChunkPoint]) -> None:
        if not points:
            return
        self._shard(collection).update(
            qe.UpdateOperation.upsert_points(
                [
                    qe.Point(
                        p.id,
                        {DENSE_VECTOR: list(map(float, p.dense)), SPARSE_VECTOR: _sparse(p.sparse)}
                        | {name: list(map(float, v)) for name, v in p.named.items()},
                        p.payload,
                    )
                    for p in points
                ]
            )
        )

    def upsert_records(self, collection: str, records: Sequence[tuple[str, dict[str, Any]]]) -> None:
        if records:
            self._shard(collection).update(
                qe.UpdateOperation.upsert_points([qe.Point(rid, {}, payload) for rid, payload in records])
            )

    def delete(self, collection: str, filter: Filter) -> None:
        self._shard(collection).update(qe.UpdateOperation.delete_points_by_filter(_to_filter(filter)))

    def delete_ids(self, collection: str, ids: Sequence[str]) -> None:
        if ids:
            self._shard(collection).update(qe.UpdateOperation.delete_points(list(ids)))

    def set_payload(self, collection: str, payload: dict[str, Any], filter: Filter) -> None:
        self._shard(collection).update(qe.UpdateOperation.set_payload_by_filter(_to_filter(filter), payload))

    def set_vectors(self, collection: str, name: str, vectors: Mapping[str, Sequence[float]]) -> int:
        shard = self._shard(collection)
        ids = list(vectors)
        if not ids:
            return 0
        # the engine refuses (and may half-apply) a batch naming a point that is gone: write the
        # points still there (a job may have replaced a document since they were read)
        present = [str(r.id) for r in shard.retrieve(ids, with_payload=False, with_vector=False)]
        if present:
            shard.update(
                qe.UpdateOperation.update_vectors(
                    [qe.PointVectors(pid, {name: list(map(float, vectors[pid]))}) for pid in present]
                )
            )
        return len(present)

    def flush(self) -> None:
        for shard in self._shards.values():
            shard.flush()

    def optimize(self, collection: str) -> None:
        self._shard(collection).optimize()

    # --- reads -----------------------------------------------------------------------
    def scroll_chunks(self, collection: str) -> Iterator[ChunkPoint]:
        """Every chunk with the vectors ingestion and the fill stored (benchmarks copy an index with it)."""
        shard = self._shard(collection)
        offset = None
        while True:
            records, offset = shard.scroll(
                qe.ScrollRequest(offset=offset, limit=_SCROLL_PAGE, with_payload=True, with_vector=True)
            )
            for r in records:
                vectors = r.vector or {}
                bm25 = vectors[SPARSE_VECTOR]
                sparse = SparseVec(indices=list(bm25.indices), values=[float(v) for v in bm25.values])
                named = {k: list(v) for k, v in vectors.items() if k not in (DENSE_VECTOR, SPARSE_VECTOR)}
                yield ChunkPoint(str(r.id), list(vectors[DENSE_VECTOR]), sparse, r.payload or {}, named)
            if offset is None:
                return

    def scroll(
        self,
        collection: str,
        filter: Filter | None = None,
        fields: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[ScoredPoint]:
        shard = self._shard(collection)
        with_payload: Any = qe.PayloadSelector.Include(list(fields)) if fields else True
        offset, left = None, limit
        while left is None or left > 0:
            page = _SCROLL_PAGE if left is None else min(left, _SCROLL_PAGE)
            records, offset = shard.scroll(
                qe.ScrollRequest(offset=offset, limit=page, filter=_to_filter(filter), with_payload=with_payload)
            )
            for r in records:
                yield ScoredPoint(id=str(r.id), score=0.0, payload=r.payload or {})
            left = None if left is None else left - len(records)
            if offset is None:
                return

    def retrieve(self, collection: str, ids: Sequence[str]) -> list[ScoredPoint]:
        if not ids:
            return []
        records = self._shard(collection).retrieve(list(ids), with_payload=True, with_vector=False)
        return [ScoredPoint(id=str(r.id), score=0.0, payload=r.payload or {}) for r in records]

    def count(self, collection: str, filter: Filter | None = None) -> int:
        return self._shard(collection).count(qe.CountRequest(exact=True, filter=_to_filter(filter)))

    def hybrid_query(self, collection: str, query: HybridQuery) -> HybridResult:
        flt = _to_filter(query.filter)
        singles: list[tuple[str, qe.QueryRequest]] = []
        prefetches: list[qe.Prefetch] = []
        if query.dense is not None:
            prefetch, single = _dense_stage(query, flt)
            prefetches.append(prefetch)
            singles.append(("dense", single))
        if query.sparse is not None:
            nearest = qe.Query.Nearest(_sparse(query.sparse), using=SPARSE_VECTOR)
            idf = qe.SearchParams(idf=qe.IdfParams(corpus=_to_filter(query.idf_corpus))) if query.idf_corpus else None
            prefetches.append(qe.Prefetch(limit=query.prefetch_limit, query=nearest, filter=flt, params=idf))
            singles.append(
                ("sparse", qe.QueryRequest(limit=query.prefetch_limit, query=nearest, filter=flt, params=idf, with_payload=True))
            )
        if not singles:
            raise ValueError("a hybrid query needs a dense or a sparse vector")
        requests = [req for _, req in singles]
        fused_index = None
        if len(prefetches) == 2:
            fused_index = len(requests)
            requests.append(
                qe.QueryRequest(limit=query.limit, prefetches=prefetches, query=_fusion(query.fusion), filter=flt, with_payload=True)
            )
        results = self._shard(collection).query_batch(qe.QueryBatchRequest(requests))
        by_stage = {stage: _scored(results[i]) for i, (stage, _) in enumerate(singles)}
        fused = _scored(results[fused_index]) if fused_index is not None else next(iter(by_stage.values()))[: query.limit]
        return HybridResult(fused=fused, dense=by_stage.get("dense", []), sparse=by_stage.get("sparse", []))

    def rescore(self, collection: str, name: str, vector: Sequence[float], ids: Sequence[str]) -> dict[str, float]:
        if not ids:
            return {}
        request = qe.QueryRequest(
            limit=len(ids),
            query=qe.Query.Nearest(list(map(float, vector)), using=name),
            filter=qe.Filter(must=[qe.HasIdCondition(set(ids))]),
            with_payload=False,
        )
        return {str(p.id): float(p.score) for p in self._shard(collection).query(request)}

    # --- aliases: the engine has none, so a small JSON file maps alias -> collection ---------
    def aliases(self) -> dict[str, str]:
        path = self.data_dir / _ALIASES_FILE
        return json.loads(path.read_text()) if path.exists() else {}

    def set_alias(self, alias: str, collection: str) -> None:
        if self._path(alias).exists():
            raise StoreError(f"'{alias}' is a collection; an alias cannot share its name")
        aliases = self.aliases() | {alias: collection}
        tmp = self.data_dir / (_ALIASES_FILE + ".tmp")
        tmp.write_text(json.dumps(aliases, indent=2))
        os.replace(tmp, self.data_dir / _ALIASES_FILE)  # atomic: readers see old or new

    def close(self) -> None:
        for shard in self._shards.values():
            try:
                shard.flush()
            finally:
                shard.close()
        self._shards.clear()
