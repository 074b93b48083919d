"""The baseline Cairn must beat: llama-index's default pipeline on the same corpus and model.

Same parsed text (ingest's parser output for every file), then llama-index's defaults: one
`Document` per file, the default `SentenceSplitter` (1024 tokens, 200 overlap), an in-memory
`VectorStoreIndex`, dense top-k retrieval, with the same embedding model through
`HuggingFaceEmbedding`. The defaults are kept on purpose, including the metadata llama-index
prepends to each node and MiniLM truncating 1024-token nodes at 256 tokens: that is what
a user of the default pipeline gets.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from evals.dataset import EvalSet
from evals.metrics import QueryOutcome, RetrievedText
from ingest.discovery import discover
from ingest.parser_pool import ParseJob, ParserPool
from retrieval.model_sources import resolve_model
from retrieval.settings import CHUNKER_VERSION, Settings

PATH_KEY = "path"


@dataclass(frozen=True)
class ParsedCorpus:
    texts: dict[str, str]  # relative path -> parsed plain text
    failures: dict[str, str]  # relative path -> why it could not be parsed


def parsed_corpus(
    evalset: EvalSet,
    corpus_digest: str,
    settings: Settings,
    cache_root: Path,
    on_file: Callable[[int], None] | None = None,
) -> ParsedCorpus:
    """Every corpus file through ingest's parser, cached per corpus and parser version.

    ``on_file(total)`` is called once per parsed file (for a progress bar).
    """
    key = hashlib.sha256(f"{corpus_digest}\x00{CHUNKER_VERSION}".encode()).hexdigest()[:12]
    cache_file = Path(cache_root) / f"{evalset.name}-parsed-{key}.json"
    if cache_file.exists():
        data = json.loads(cache_file.read_text(encoding="utf-8"))
        return ParsedCorpus(texts=data["texts"], failures=data["failures"])

    found, rejected = discover(evalset.corpus_dir, skip_names=frozenset({settings.acl_file_name}))
    texts: dict[str, str] = {}
    failures = {r.rel_path: r.reason for r in rejected}
    jobs = [ParseJob(f.rel_path, str(f.path), f.file_type) for f in found]
    for outcome in ParserPool(settings.parse_workers, settings.parse_timeout_s).parse(jobs):
        if outcome.document is None:
            failures[outcome.job.key] = outcome.error or "not parsed"
        else:
            texts[outcome.job.key] = "\n\n".join(b.text for b in outcome.document.blocks if b.text.strip())
        if on_file:
            on_file(len(jobs))
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file.write_text(json.dumps({"texts": texts, "failures": failures}), encoding="utf-8")
    return ParsedCorpus(texts=dict(sorted(texts.items())), failures=failures)


_PERSISTED_MARKER = "cairn-complete"


def baseline_folder(cache_root: Path, evalset: EvalSet, corpus_digest: str, settings: Settings) -> Path:
    """Where the built baseline index is kept: one per corpus, parser, model and llama-index version."""
    from importlib.metadata import version

    parts = (corpus_digest, str(CHUNKER_VERSION), settings.embedding_model, version("llama-index-core"))
    key = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:12]
    return Path(cache_root) / f"{evalset.name}-llamaindex-{key}"


class LlamaIndexBaseline:
    """A `VectorStoreIndex` over the parsed corpus; `retrieve` answers like Cairn's eval calls."""

    def __init__(self, corpus: ParsedCorpus, settings: Settings, persist_dir: Path | None = None) -> None:
        """Builds the index, or loads it from ``persist_dir`` when an earlier run saved it there
        (the caller keys the folder by corpus and model; see `baseline_folder`)."""
        from llama_index.core import Document, StorageContext, VectorStoreIndex, load_index_from_storage
        from llama_index.core.node_parser import SentenceSplitter
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding
        from transformers import AutoTokenizer

        from retrieval.context import TokenizerCounter

        self.settings = settings
        self.embed_model = HuggingFaceEmbedding(
            model_name=resolve_model(settings.embedding_model), device="cpu", embed_batch_size=settings.embed_batch_size
        )
        start = time.perf_counter()
        self.loaded = persist_dir is not None and (Path(persist_dir) / _PERSISTED_MARKER).exists()
        if self.loaded:
            storage = StorageContext.from_defaults(persist_dir=str(persist_dir))
            self.index = load_index_from_storage(storage, embed_model=self.embed_model)
        else:
            documents = [Document(text=text, metadata={PATH_KEY: path}) for path, text in sorted(corpus.texts.items())]
            self.index = VectorStoreIndex.from_documents(
                documents, embed_model=self.embed_model, transformations=[SentenceSplitter()]
            )
            if persist_dir is not None:
                self.index.storage_context.persist(persist_dir=str(persist_dir))
                (Path(persist_dir) / _PERSISTED_MARKER).write_text("complete\n")  # after the save succeeded
        self.build_seconds = time.perf_counter() - start
        self.nodes = len(self.index.docstore.docs)
        # The same counter Cairn's context assembly uses by default (the dense model's tokenizer).
        self.counter = TokenizerCounter(AutoTokenizer.from_pretrained(resolve_model(settings.embedding_model)))

    def retrieve(self, query_id: str, query: str, depth: int, top_k: int) -> QueryOutcome:
        """``depth`` nodes for the document metrics; the first ``top_k`` are the chunks shown,
        and as many of those as fit the context token budget form the context."""
        start = time.perf_counter()
        found = self.index.as_retriever(similarity_top_k=depth).retrieve(query)
        elapsed = (time.perf_counter() - start) * 1000
        chunks = [RetrievedText(path=n.node.metadata[PATH_KEY], text=n.node.get_content()) for n in found]
        context, used = [], 0
        for chunk in chunks[:top_k]:
            tokens = self.counter.count(chunk.text)
            if used + tokens <= self.settings.context_token_budget:
                context.append(chunk)
                used += tokens
        return QueryOutcome(
            query_id=query_id,
            ranked_paths=[c.path for c in chunks],
            top_chunks=chunks[:top_k],
            context=context,
            timings_ms={"total": round(elapsed, 3)},
        )
