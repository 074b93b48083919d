"""Backups of a collection and its file records: `cairn index snapshot create|list`.

Server: Qdrant's own collection snapshots, written by the server into its snapshots folder
(``/qdrant/snapshots`` in docker-compose.yml, a volume of its own). Embedded: qdrant-edge can
restore a shard from a server snapshot (``EdgeShard.unpack_snapshot``/``update_from_snapshot``)
but cannot create one, so an embedded snapshot is a gzipped tar of the collection's folder, taken
while this process holds the engine's lock on it: no other process can write meanwhile.
Restore one with ``tar -xzf FILE -C DATA_DIR`` while no Cairn process runs.
"""

from __future__ import annotations

import re
import tarfile
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel

from ingest.reindex import ensure_unlocked
from retrieval.index_schema import files_collection
from retrieval.store.base import CollectionMissingError, IndexStore

# gzip: the engine preallocates its files sparsely (a 2-chunk collection is ~0.5 MB on disk,
# 212 MB apparent), and tarfile cannot write sparse entries; level 1 squeezes the holes fast.
_SUFFIX = ".snapshot.tar.gz"
_STAMP = "%Y-%m-%d-%H-%M-%S"


class SnapshotInfo(BaseModel):
    collection: str  # the real collection (aliases resolved)
    name: str
    size_bytes: int | None
    created: str | None  # ISO 8601
    location: str  # "server" (inside the Qdrant server's snapshots folder) or the file's path


def snapshot_collections(store: IndexStore, collection: str) -> list[str]:
    """The real collection behind ``collection`` (an alias or a name) and its file records."""
    real = store.aliases().get(collection, collection)
    if real not in store.list_collections():
        raise CollectionMissingError(
            f"collection '{collection}' does not exist: nothing to snapshot (list them with `cairn index list`)"
        )
    records = files_collection(real)
    return [real] + ([records] if records in store.list_collections() else [])


def default_snapshot_dir(data_dir: Path) -> Path:
    # inside the (git-ignored) data folder; not a collection, since it holds no edge_config.json
    return Path(data_dir) / "snapshots"


def create_snapshots(store: IndexStore, collection: str, out_dir: Path | None = None) -> list[SnapshotInfo]:
    names = snapshot_collections(store, collection)
    server = _server_client(store)
    if server is not None:
        made = [server.create_snapshot(name, wait=True) for name in names]
        return [_server_info(name, d) for name, d in zip(names, made) if d is not None]
    data_dir = Path(store.data_dir)  # type: ignore[attr-defined]
    ensure_unlocked(store, names[0])  # holds the engine's lock: nobody writes while we copy
    store.flush()
    out_dir = Path(out_dir or default_snapshot_dir(data_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)
    infos = []
    for name in names:
        target = out_dir / f"{name}-{now.strftime(_STAMP)}{_SUFFIX}"
        partial = target.with_name(target.name + ".partial")
        with tarfile.open(partial, "w:gz", compresslevel=1) as tar:
            tar.add(data_dir / name, arcname=name)
        partial.replace(target)  # a listed snapshot is always complete
        infos.append(_file_info(name, target))
    return infos


def list_snapshots(store: IndexStore, collection: str, out_dir: Path | None = None) -> list[SnapshotInfo]:
    names = snapshot_collections(store, collection)
    server = _server_client(store)
    if server is not None:
        return [_server_info(name, d) for name in names for d in server.list_snapshots(name)]
    out_dir = Path(out_dir or default_snapshot_dir(Path(store.data_dir)))  # type: ignore[attr-defined]
    infos = []
    for name in names:
        pattern = re.compile(re.escape(name) + r"-\d{4}(-\d\d){5}" + re.escape(_SUFFIX) + "$")
        infos += [_file_info(name, p) for p in sorted(out_dir.glob(f"{name}-*{_SUFFIX}")) if pattern.match(p.name)]
    return infos


def _server_client(store: IndexStore):
    from retrieval.store.server import ServerStore

    return store.client if isinstance(store, ServerStore) else None


def _server_info(collection: str, description) -> SnapshotInfo:
    return SnapshotInfo(
        collection=collection,
        name=description.name,
        size_bytes=description.size,
        created=description.creation_time,
        location="server",
    )


def _file_info(collection: str, path: Path) -> SnapshotInfo:
    stamp = path.name[len(collection) + 1 : -len(_SUFFIX)]
    created = datetime.strptime(stamp, _STAMP).replace(tzinfo=timezone.utc).isoformat()
    return SnapshotInfo(collection=collection, name=path.name, size_bytes=path.stat().st_size, created=created, location=str(path))
