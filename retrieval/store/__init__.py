"""Storage: one interface (`IndexStore`), two Qdrant backends, chosen by settings."""

from __future__ import annotations

from retrieval.settings import Settings
from retrieval.store.base import CollectionMissingError, IndexLockedError, IndexStore, StoreError


def open_store(settings: Settings) -> IndexStore:
    """The server backend when QDRANT_URL is set, else the embedded engine under data_dir."""
    if settings.uses_server:
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


__all__ = ["open_store", "IndexStore", "StoreError", "IndexLockedError", "CollectionMissingError"]
