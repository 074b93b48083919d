"""Named retrieval configurations measured side by side in one `cairn eval` run.

A configuration is a set of setting overrides (anything in `retrieval.settings.Settings`:
chunk sizes, candidates, fusion, budget...) plus the request's mode and rerank switch. One
that changes an ingest setting (see ``Settings.ingest_fingerprint``) gets its own index.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import ValidationError

from retrieval.settings import Settings

Mode = Literal["hybrid", "dense", "sparse"]
Kind = Literal["cairn", "llamaindex"]

REQUEST_KEYS = ("mode", "rerank", "kind")  # row fields; every other key is a setting
_MODES = ("hybrid", "dense", "sparse")
_KINDS = ("cairn", "llamaindex")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}

LLAMAINDEX = "llamaindex-default"


class ConfigError(ValueError):
    """A `--config` that cannot be used; the message says which part and what is allowed."""


@dataclass(frozen=True)
class EvalConfig:
    name: str
    description: str
    overrides: dict[str, Any] = field(default_factory=dict)  # Settings fields
    mode: Mode = "hybrid"
    rerank: bool = False
    kind: Kind = "cairn"

    def settings(self, base: Settings) -> Settings:
        """``base`` with this configuration's overrides, validated like the environment is."""
        if not self.overrides:
            return base
        try:
            return Settings.model_validate({**base.model_dump(), **self.overrides})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"configuration '{self.name}': {problems}") from exc

    def summary(self) -> str:
        """``mode=hybrid rerank=off fusion=rrf ...``: what the row measures, in one line."""
        parts = [f"mode={self.mode}", f"rerank={'on' if self.rerank else 'off'}"]
        parts += [f"{k}={v}" for k, v in self.overrides.items()]
        return " ".join(parts)


def builtin_configs(
    settings: Settings, reranker_available: bool, reranker_name: str = "the reranker"
) -> list[EvalConfig]:
    """The ablation every run measures; hybrid+rerank only when a reranker can run."""
    configs = [
        EvalConfig("bm25", "BM25 alone (Qdrant sparse vectors, IDF modifier)", mode="sparse"),
        EvalConfig("dense", f"dense alone ({settings.embedding_model})", mode="dense"),
        EvalConfig(
            "hybrid-rrf",
            "Qdrant RRF with the configured k and weights",
            {"fusion": "rrf"},
        ),
        EvalConfig(
            "hybrid-rrf-unweighted",
            "Qdrant's default RRF: weights 1,1 and k=2",
            {"fusion": "rrf", "rrf_k": 2, "rrf_dense_weight": 1.0, "rrf_sparse_weight": 1.0},
        ),
        EvalConfig("hybrid-dbsf", "Qdrant distribution-based score fusion", {"fusion": "dbsf"}),
        EvalConfig(
            "hybrid-no-length-prior",
            "the configured fusion, dense scores without the document length prior",
            {"doc_length_prior": 0.0},
        ),
        EvalConfig(
            "dense-no-length-prior", "dense alone, without the document length prior", {"doc_length_prior": 0.0}, mode="dense"
        ),
    ]
    if reranker_available:
        configs.append(
            EvalConfig(
                "hybrid+rerank",
                f"the configured fusion, then {reranker_name} over the top {settings.rerank_depth}",
                rerank=True,
            )
        )
    return configs


def reference_name(settings: Settings, reranker_available: bool) -> str:
    """The row that is Cairn's default: what `cairn search` does with no options."""
    if reranker_available:
        return "hybrid+rerank"
    return "hybrid-dbsf" if settings.fusion == "dbsf" else "hybrid-rrf"


def _coerce_request(key: str, value: str, spec: str) -> Any:
    if key == "mode":
        if value not in _MODES:
            raise ConfigError(f"--config '{spec}': mode must be one of {', '.join(_MODES)}, not '{value}'")
        return value
    if key == "kind":
        if value not in _KINDS:
            raise ConfigError(f"--config '{spec}': kind must be one of {', '.join(_KINDS)}, not '{value}'")
        return value
    lowered = value.lower()
    if lowered not in _TRUE | _FALSE:
        raise ConfigError(f"--config '{spec}': rerank must be true or false, not '{value}'")
    return lowered in _TRUE


def parse_config(spec: str, base: EvalConfig, settings: Settings) -> EvalConfig:
    """``NAME:key=value,key=value`` on top of ``base`` (Cairn's default row).

    Keys are Settings fields (``chunk_tokens``, ``prefetch_limit``, ``rrf_k``, ``fusion``,
    ``context_token_budget``...), the request's ``mode`` and ``rerank``, or ``kind=llamaindex``:
    the llama-index baseline under these settings (e.g. another ``embedding_model``).
    """
    name, sep, body = spec.partition(":")
    name = name.strip()
    if not name or not sep:
        raise ConfigError(f"--config '{spec}': expected NAME:key=value[,key=value...], e.g. small:chunk_tokens=120")
    overrides: dict[str, Any] = dict(base.overrides)
    given: dict[str, Any] = {}  # the row fields the spec sets
    for item in filter(None, (p.strip() for p in body.split(","))):
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key:
            raise ConfigError(f"--config '{spec}': '{item}' is not key=value")
        if key in REQUEST_KEYS:
            given[key] = _coerce_request(key, value, spec)
        elif key in Settings.model_fields:
            overrides[key] = value  # validated (and converted) by EvalConfig.settings
        else:
            allowed = ", ".join(sorted(set(Settings.model_fields) | set(REQUEST_KEYS)))
            raise ConfigError(f"--config '{spec}': unknown key '{key}'; use one of: {allowed}")
    if given.get("kind") == "llamaindex":
        request = {"kind": "llamaindex", "mode": "dense", "rerank": False}
        if given.get("rerank") or given.get("mode", "dense") != "dense":
            raise ConfigError(f"--config '{spec}': the llama-index baseline is dense retrieval without reranking")
        description = f"llama-index defaults with {body.strip()}"
    else:
        request = {"kind": base.kind, "mode": base.mode, "rerank": base.rerank} | given
        description = f"{base.name} with {body.strip() or 'no changes'}"
    config = replace(base, name=name, description=description, overrides=overrides, **request)
    config.settings(settings)  # fail now, before anything is ingested
    return config
