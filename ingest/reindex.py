"""Re-index into a fresh collection behind an alias, then switch the alias: search never stops.

Search reads ``settings.collection``. After the first re-index that name is an alias pointing
at a real collection ``NAME-<UTC time>-<settings fingerprint>``; a re-index builds the next
one beside it with the current settings (a new chunk size, a new embedding model), switches
the alias, and optionally drops the previous collection.

The file-record companion moves with it: the alias ``NAME__files`` points at
``<real collection>__files``, so ``files_collection(alias)`` (what incremental ingestion,
`index stats` and the service read) always names the records of the chunks being searched.
The records alias is switched first, the chunks alias second: search (which reads chunks
only) sees the new index at one instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from pydantic import BaseModel

from ingest.parser_pool import ParserPool
from ingest.pipeline import IngestPipeline, IngestReport, fingerprint_of
from ingest.rerank_fill import RerankVectorFill
from retrieval.encoders import DenseEncoder, SparseEncoder
from retrieval.index_schema import files_collection
from retrieval.settings import Settings
from retrieval.store.base import IndexLockedError, IndexStore, StoreError


class ReindexError(StoreError):
    """The re-index cannot go ahead (or its switch would lose data); the message says why."""


class ReindexReport(BaseModel):
    alias: str
    collection: str  # the new collection (the alias points at it when switched)
    switched: bool
    previous: str | None  # the collection it pointed at before (None: a first index)
    dropped: list[str]  # collections deleted after the switch
    kept_previous: str | None  # why the previous collection was kept, when it was
    ingests: list[IngestReport]


@dataclass(frozen=True)
class AliasTarget:
    """What a name currently is: an alias to ``collection``, a plain collection, or nothing."""

    name: str
    collection: str | None
    plain: bool  # a collection built before aliases were used: it holds the name itself


def alias_target(store: IndexStore, name: str) -> AliasTarget:
    aliases = store.aliases()
    if name in aliases:
        return AliasTarget(name, aliases[name], plain=False)
    if name in store.list_collections():
        return AliasTarget(name, name, plain=True)
    return AliasTarget(name, None, plain=False)


def new_collection_name(store: IndexStore, alias: str, fingerprint: str, now: datetime | None = None) -> str:
    """``alias-YYYYmmdd-HHMMSS-<fingerprint>``: sortable by age, and says which settings built it."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
    base = f"{alias}-{stamp}-{fingerprint[:8]}"
    taken = set(store.list_collections()) | set(store.aliases())
    name, n = base, 1
    while name in taken or files_collection(name) in taken:
        n += 1
        name = f"{base}-{n}"
    return name


def release_collections(store: IndexStore) -> None:
    """The embedded engine locks every collection folder it opens; let them go so another
    process (a running `cairn serve`) can open the new collection the moment the alias moves.
    The embedded store reopens folders lazily, so it stays usable; a server client keeps its
    connection (the server does the locking)."""
    from retrieval.store.edge import EdgeStore

    if isinstance(store, EdgeStore):
        store.close()


def ensure_unlocked(store: IndexStore, collection: str) -> None:
    """Raises `IndexLockedError` when another process has ``collection`` or its records open
    (embedded engine). Opening them takes the engine's lock, so once this succeeds they can be
    deleted safely."""
    for name in (collection, files_collection(collection)):
        if store.collection_exists(name):
            store.count(name)


def switch_alias(store: IndexStore, alias: str, collection: str) -> None:
    """Point ``alias`` (and ``alias__files``) at ``collection`` (and its records)."""
    for name in (collection, files_collection(collection)):
        if not store.collection_exists(name) or name in store.aliases():
            raise ReindexError(f"'{name}' is not a collection: list them with `cairn index list`")
    store.set_alias(files_collection(alias), files_collection(collection))
    store.set_alias(alias, collection)


def drop_collection(store: IndexStore, collection: str) -> None:
    """Delete a collection and its records; refuses one an alias still points at."""
    users = sorted(a for a, target in store.aliases().items() if target in (collection, files_collection(collection)))
    if users:
        raise ReindexError(
            f"collection '{collection}' is still in use by alias(es) {', '.join(users)}: "
            "switch them first (`cairn index switch`)"
        )
    for name in (collection, files_collection(collection)):
        if name in store.list_collections():
            store.delete_collection(name)


class AliasReindexer:
    """Builds ``<alias>-<time>-<fingerprint>`` from folders with the real ingest pipeline, then
    switches the alias to it."""

    def __init__(
        self,
        settings: Settings,
        store: IndexStore,
        dense: DenseEncoder,
        sparse: SparseEncoder,
        parser_pool: ParserPool | None = None,
        rerank_encoder: DenseEncoder | None = None,
    ) -> None:
        """``rerank_encoder``: the embedding reranker's model; the new collection gets its vectors
        before the switch, so searches never rerank slower after it."""
        self.settings = settings
        self.alias = settings.collection
        self.rerank_encoder = rerank_encoder
        self.store = store
        self.dense = dense
        self.sparse = sparse
        self._owns_pool = parser_pool is None
        self.parser_pool = parser_pool or ParserPool(
            settings.parse_workers, settings.parse_timeout_s, memory_mb=settings.parse_memory_mb
        )

    def close(self) -> None:
        if self._owns_pool:
            self.parser_pool.close()

    def run(
        self,
        folders: Sequence[Path],
        drop_old: bool = False,
        allow_missing_sources: bool = False,
        switch: bool = True,
        now: datetime | None = None,
    ) -> ReindexReport:
        """``switch=False`` only builds: for a new embedding model, whose queries need API
        processes running that model, switch later with `switch_alias` (docs/deployment.md)."""
        folders = [Path(f).resolve() for f in folders]
        current = alias_target(self.store, self.alias)
        self._check_before_build(current, folders, drop_old and switch, allow_missing_sources, switch)

        new = new_collection_name(self.store, self.alias, fingerprint_of(self.settings), now)
        settings = self.settings.model_copy(update={"collection": new})
        ingests: list[IngestReport] = []
        try:
            for folder in folders:
                pipeline = IngestPipeline(settings, self.store, self.dense, self.sparse, parser_pool=self.parser_pool)
                ingests.append(pipeline.run(folder, source=folder.name))
            if self.store.count(new) == 0:
                raise ReindexError(
                    f"nothing could be indexed from {', '.join(map(str, folders))}: "
                    f"'{self.alias}' was left as it was; see the failures above"
                )
            if self.rerank_encoder is not None:
                RerankVectorFill(self.store, new, self.rerank_encoder).run()
        except BaseException:
            self._discard(new)  # a half-built collection is never switched to
            raise
        self.store.flush()
        if not switch:
            release_collections(self.store)
            return ReindexReport(
                alias=self.alias, collection=new, switched=False, previous=current.collection,
                dropped=[], kept_previous=None, ingests=ingests,
            )  # fmt: skip

        dropped: list[str] = []
        if current.plain:
            # The name is taken by a collection: it has to go before the alias can take it
            # (this process has held its lock since the check). Search is unavailable only
            # between this delete and the alias creation below.
            self.store.delete_collection(self.alias)
            self.store.delete_collection(files_collection(self.alias))
            dropped.append(self.alias)
        release_collections(self.store)  # before the switch: a running server may open it at once
        switch_alias(self.store, self.alias, new)

        kept = None
        previous = current.collection
        if drop_old and previous is not None and not current.plain:
            try:
                ensure_unlocked(self.store, previous)
                drop_collection(self.store, previous)
                dropped.append(previous)
            except IndexLockedError:
                kept = (
                    f"'{previous}' is still open in another process (a running `cairn serve` or `cairn ui` "
                    f"that served it); drop it after restarting that process: `cairn index drop {previous}`"
                )
        elif previous is not None and not current.plain:
            kept = f"kept for rollback (`cairn index switch {previous}`); drop it with `cairn index drop {previous}`"
        release_collections(self.store)
        return ReindexReport(
            alias=self.alias, collection=new, switched=True, previous=previous, dropped=dropped,
            kept_previous=kept, ingests=ingests,
        )  # fmt: skip

    # --- steps -----------------------------------------------------------------------
    def _check_before_build(
        self, current: AliasTarget, folders: list[Path], drop_old: bool, allow_missing_sources: bool, switch: bool
    ) -> None:
        for folder in folders:
            if not folder.is_dir():
                raise ReindexError(f"{folder} is not a folder; give the folders of documents to index")
        names = [f.name for f in folders]
        if len(set(names)) != len(names):
            raise ReindexError(
                f"two folders share a name ({', '.join(names)}); each folder's name is its source, so rename one"
            )
        if current.plain and switch and not drop_old:
            raise ReindexError(
                f"'{self.alias}' is a plain collection (indexed before aliases were used). To re-index behind "
                f"an alias its name must be freed: run again with --drop-old (search is unavailable only for "
                "the instant between deleting it and creating the alias)"
            )
        if current.plain and switch:
            ensure_unlocked(self.store, self.alias)  # never delete a collection another process serves
        if current.collection is not None and not allow_missing_sources:
            missing = sorted(self._sources(current.collection) - set(names))
            if missing:
                raise ReindexError(
                    f"'{self.alias}' also holds the source(s) {', '.join(missing)}, which these folders do not "
                    "include: give their folders too (a folder's name is its source), or pass "
                    "--allow-missing-sources to leave them out of the new index"
                )

    def _sources(self, collection: str) -> set[str]:
        records = files_collection(collection)
        if not self.store.collection_exists(records):
            return set()
        return {p.payload.get("source", "") for p in self.store.scroll(records, fields=["source"])}

    def _discard(self, collection: str) -> None:
        for name in (collection, files_collection(collection)):
            try:
                self.store.delete_collection(name)
            except Exception:  # cleanup after a failure must not hide that failure
                pass
