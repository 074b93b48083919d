"""Storage: one interface (`IndexStore`), two Qdrant backends, chosen by settings."""

from __future__ import annotations

from retrieval.settings import StorageSettings
from retrieval.store.base import (
    CollectionMissingError,
    IncompatibleIndexError,
    IndexLockedError,
    IndexStore,
    StoreError,
)


def open_store(settings: StorageSettings) -> IndexStore:
    """The server backend when QDRANT_URL is set, else the embedded engine under data_dir."""
    if settings.qdrant_url:
        from retrieval.store.server import ServerStore

        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return ServerStore.connect(
            settings.qdrant_url,
            api_key,
            shards=settings.qdrant_shards,
            replication_factor=settings.qdrant_replication_factor,
            on_disk=settings.qdrant_on_disk,
        )
    from retrieval.store.edge import EdgeStore

    return EdgeStore(settings.data_dir)


def check_dense_size(store: IndexStore, collection: str, model: str, dimension: int) -> None:
    """Refuse to mix vector sizes in one collection: the index keeps what it has."""
    if not store.collection_exists(collection):
        return
    size = store.dense_size(collection)
    if size != dimension:
        raise IncompatibleIndexError(
            f"collection '{collection}' holds {size}-d dense vectors, but the embedding model "
            f"{model} (CAIRN_EMBEDDING_MODEL) makes {dimension}-d ones; nothing was changed. "
            "Re-index into a new collection with `cairn index reindex FOLDER...` (searches keep "
            "the old one until it switches), set CAIRN_COLLECTION to a new name, or go back to "
            "the model the index was built with."
        )


__all__ = [
    "open_store",
    "check_dense_size",
    "IndexStore",
    "StoreError",
    "IndexLockedError",
    "CollectionMissingError",
    "IncompatibleIndexError",
]
