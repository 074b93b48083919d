"""Fixtures for the live-index tests (ingest jobs, the ingest API, watching): a runtime built by
the composition root over either backend, with the session's encoders and parser process, and
folders of real documents to feed it. Test modules import what they use from here."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Callable

import pytest
from fixtures_retrieval import retrieval_settings

from retrieval.access import Identities, IdentitiesConfig, Identity, UserEntry

ADMIN_KEY = "admin-key-0123456789abcdef"
HR_KEY = "hr-key-0123456789abcdef"
STAFF_KEY = "staff-key-0123456789abcdef"

ADMIN = Identity("ada", ("public",), admin=True)
PUBLIC = Identity("anonymous", ("public",))
HR = Identity("hana", ("public", "hr"))


def identities() -> Identities:
    return Identities(
        IdentitiesConfig(
            anonymous_groups=["public"],
            users=[
                UserEntry(user="ada", api_key=ADMIN_KEY, groups=["public"], admin=True),
                UserEntry(user="hana", api_key=HR_KEY, groups=["public", "hr"]),
                UserEntry(user="sam", api_key_sha256=hashlib.sha256(STAFF_KEY.encode()).hexdigest(), groups=["public"]),
            ],
        )
    )


def open_store(kind: str, base: Path):
    """The embedded engine, or the server client in local mode, both on disk under ``base``."""
    if kind == "edge":
        from retrieval.store.edge import EdgeStore

        return EdgeStore(base / "index")
    from qdrant_client import QdrantClient

    from retrieval.store.server import ServerStore

    return ServerStore(QdrantClient(path=str(base / "qdrant")))


def live_runtime(kind: str, base: Path, encoders, parser_pool, **overrides):
    from retrieval.rerank import NoReranker
    from runtime import assemble_runtime

    settings = retrieval_settings(
        base / "index", upload_dir=base / "uploads", ingest_roots=[base / "docs"], ingest_write_batch=16, **overrides
    )
    store = open_store(kind, base)
    return assemble_runtime(settings, identities(), store, *encoders, NoReranker(), parser_pool=parser_pool)


@pytest.fixture(params=["edge", "server"])
def live(request, tmp_path, encoders, parser_pool):
    """A runtime over an empty index (both backends); ``tmp_path/docs`` is its allowed root."""
    (tmp_path / "docs").mkdir()
    runtime = live_runtime(request.param, tmp_path, encoders, parser_pool)
    yield runtime
    runtime.close()


# One word per policy file, so a search can tell the files apart.
TOPICS = (
    "harbour glacier orchid lantern falcon quarry meadow saffron walrus copper tundra violin pelican basalt "
    "cobalt juniper marmot obsidian parsley quince raven sequoia tangerine umber vulture willow yak zinnia "
    "anchovy bramble cinnamon dolphin ember fjord gazelle hazel iguana jasmine kestrel lagoon mango nutmeg "
    "otter papaya quartz reindeer sorrel thistle"
).split()


def policy_text(i: int, sections: int = 3, sentences: int = 12, word: str = "clause") -> str:
    topic = TOPICS[i % len(TOPICS)]
    body = "\n\n".join(
        f"## Part {j}\n\n"
        + " ".join(
            f"Policy {i} on the {topic} {word} {j} sentence {k} explains rule {i * j + k}." for k in range(sentences)
        )
        for j in range(sections)
    )
    return f"# Policy {i}: {topic}\n\n{body}\n"


def write_policies(root: Path, count: int, start: int = 0, **kwargs) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + count):
        path = root / f"policy-{i:02}.md"
        path.write_text(policy_text(i, **kwargs))
        paths.append(path)
    return paths


def wait_for(check: Callable[[], object], timeout: float, every: float = 0.2, what: str = "the condition"):
    """``check()``'s first truthy value within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(every)


def indexed_paths(runtime, source: str | None = None) -> set[str]:
    return {r.path for r in runtime.ingest_jobs.documents() if source is None or r.source == source}
