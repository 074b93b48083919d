"""The two encoders shared by ingestion and search: dense (sentence-transformers) and BM25.

Ingestion and queries must use the very same encoders, so both sides build them here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np

from retrieval.model_sources import DEFAULT_MODELS_DIR, resolve_model
from retrieval.settings import ModelSettings


@dataclass(frozen=True)
class SparseVec:
    indices: list[int]
    values: list[float]


class DenseEncoder:
    """A sentence-transformers bi-encoder producing unit-length vectors (cosine = dot)."""

    def __init__(
        self, model_name: str, batch_size: int = 64, device: str = "cpu", models_dir: Path = DEFAULT_MODELS_DIR
    ) -> None:
        from sentence_transformers import SentenceTransformer

        self.model_name = model_name
        self.batch_size = batch_size
        self._model = SentenceTransformer(resolve_model(model_name, models_dir), device=device)

    @property
    def dimension(self) -> int:
        return int(self._model.get_embedding_dimension())

    @property
    def max_seq_length(self) -> int:
        return int(self._model.max_seq_length)

    @cached_property
    def tokenizer(self):
        return self._model.tokenizer

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for ``text``, without the special tokens it adds."""
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_query(self, text: str) -> list[float]:
        return self._encode([text])[0].tolist()

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        return self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )


class SparseEncoder:
    """BM25 term-frequency vectors for a Qdrant sparse vector with the IDF modifier.

    Qdrant's own BM25 tokenizer (from qdrant-edge, the same one the server uses) weighs
    document terms with BM25's saturation and length normalisation; Qdrant supplies IDF at
    query time. Queries weigh each unique term 1.0.
    """

    def __init__(self, avg_len: float = 120.0, k: float = 1.2, b: float = 0.75) -> None:
        from qdrant_edge import Bm25, Bm25Config

        self._bm25 = Bm25(Bm25Config(k=k, b=b, avg_len=avg_len, language="english"))

    def encode_documents(self, texts: Sequence[str]) -> list[SparseVec]:
        return [self._to_vec(self._bm25.embed_document(text)) for text in texts]

    def encode_query(self, text: str) -> SparseVec:
        return self._to_vec(self._bm25.embed_query(text))

    @staticmethod
    def _to_vec(vector) -> SparseVec:
        return SparseVec(indices=list(vector.indices), values=list(vector.values))


def build_encoders(models: ModelSettings) -> tuple[DenseEncoder, SparseEncoder]:
    """The one place both ingestion and search build their encoders, from the model settings."""
    dense = DenseEncoder(models.embedding_model, batch_size=models.embed_batch_size, models_dir=models.embedding_model_dir)
    return dense, SparseEncoder(avg_len=models.bm25_avg_len)
