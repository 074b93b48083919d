"""Scores for one configuration's answers to an evaluation set.

Document level (ranx): hits are deduplicated to files, each file keeping its first rank, and
scored with nDCG@10, MRR@10, Recall@10 and Recall@100 against the binary qrels.

Chunk level (token overlap): text from PDF, DOCX, HTML and Markdown differs from the gold
``passage`` in line breaks, hyphenation, escaping and indentation, so texts are compared as
lower-cased alphanumeric word tokens, in word 3-grams (shingles) so that common words
scattered over an unrelated chunk do not count as overlap.

- ``passage_hit@k``: 1 when one of the top-k chunks comes from a gold document and shares
  at least ``PASSAGE_OVERLAP`` of the smaller side's shingles with the gold passage. "The
  smaller side" lets both cases count: a short passage wholly inside a chunk, and a chunk
  that is one part of a long passage spread over several chunks.
- ``context_recall``: the share of the gold passage's shingles found in the assembled
  context's blocks from the gold document (the best gold passage when there are several).
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
from ranx import Qrels, Run, evaluate

from evals.dataset import EvalSet, Judgement
from retrieval.words import words

DOC_METRICS = ("ndcg@10", "mrr@10", "recall@10", "recall@100")
PASSAGE_METRIC = "passage_hit@{k}"
CONTEXT_METRIC = "context_recall"
PASSAGE_OVERLAP = 0.5  # half of the smaller side: robust to extraction noise, not met by chance
SHINGLE = 3



@dataclass(frozen=True)
class RetrievedText:
    path: str  # relative to corpus/, as the qrels name documents
    text: str


@dataclass
class QueryOutcome:
    """What one configuration returned for one query."""

    query_id: str
    ranked_paths: list[str]  # every hit's file, in rank order, repeats included
    top_chunks: list[RetrievedText]  # the top-k chunks the user sees
    context: list[RetrievedText] | None  # the assembled context blocks; None when not assembled
    timings_ms: dict[str, float] = field(default_factory=dict)


# --- document level ------------------------------------------------------------------------


def dedupe_to_files(paths: Iterable[str]) -> list[str]:
    """Each file once, at the rank of its first hit."""
    return list(dict.fromkeys(paths))


def document_run(rankings: Mapping[str, Sequence[str]], name: str) -> Run:
    """A ranx run from ranked file lists: strictly decreasing scores keep the exact order."""
    return Run(
        {qid: {path: float(len(files) - i) for i, path in enumerate(files)} for qid, files in rankings.items()},
        name=name,
    )


def document_metrics(
    qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Sequence[str]], name: str = "run"
) -> dict[str, dict[str, float]]:
    """``{metric: {query_id: value}}`` for every query in ``qrels`` (a query with no
    ranking scores 0). ``rankings`` hold deduplicated file lists."""
    run = document_run({qid: rankings.get(qid, []) for qid in qrels}, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's integer-cast notes inside ranx
        evaluate(Qrels({q: dict(d) for q, d in qrels.items()}), run, list(DOC_METRICS), return_mean=False)
    return {m: {qid: float(v) for qid, v in run.scores[m].items()} for m in DOC_METRICS}


# --- chunk level ---------------------------------------------------------------------------


def word_tokens(text: str) -> list[str]:
    return words(text)


def shingles(text: str) -> Counter:
    """Word 3-grams as a multiset; a text shorter than 3 words is its own single shingle."""
    words = word_tokens(text)
    if len(words) < SHINGLE:
        return Counter([tuple(words)]) if words else Counter()
    return Counter(tuple(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1))


def _shared(a: Counter, b: Counter) -> int:
    return sum((a & b).values())


def chunk_holds_passage(chunk: str, passage: str) -> bool:
    """The chunk shares at least PASSAGE_OVERLAP of the smaller side's shingles with the passage."""
    c, p = shingles(chunk), shingles(passage)
    smaller = min(sum(c.values()), sum(p.values()))
    return smaller > 0 and _shared(c, p) >= PASSAGE_OVERLAP * smaller


def passage_hit(top_chunks: Sequence[RetrievedText], gold: Sequence[Judgement]) -> float:
    for judgement in gold:
        if not judgement.passage:
            continue
        for chunk in top_chunks:
            if chunk.path == judgement.doc and chunk_holds_passage(chunk.text, judgement.passage):
                return 1.0
    return 0.0


def context_recall(blocks: Sequence[RetrievedText], gold: Sequence[Judgement]) -> float:
    best = 0.0
    for judgement in gold:
        passage = shingles(judgement.passage)
        total = sum(passage.values())
        if not total:
            continue
        found: Counter = Counter()
        for block in blocks:
            if block.path == judgement.doc:
                found += shingles(block.text)
        best = max(best, _shared(passage, found) / total)
    return best


# --- one configuration over the whole set --------------------------------------------------


def score_outcomes(evalset: EvalSet, outcomes: Sequence[QueryOutcome], k: int) -> dict[str, dict[str, float]]:
    """Every metric, per query: ``{metric: {query_id: value}}``."""
    by_id = {o.query_id: o for o in outcomes}
    qrels = {qid: docs for qid, docs in evalset.qrels_dict().items() if qid in by_id}
    scores = document_metrics(qrels, {qid: dedupe_to_files(o.ranked_paths) for qid, o in by_id.items()})
    scores[PASSAGE_METRIC.format(k=k)] = {
        qid: passage_hit(o.top_chunks[:k], evalset.judgements_for(qid)) for qid, o in by_id.items()
    }
    if all(o.context is not None for o in outcomes):
        scores[CONTEXT_METRIC] = {
            qid: context_recall(o.context or [], evalset.judgements_for(qid)) for qid, o in by_id.items()
        }
    return scores


def mean_scores(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    return {m: float(np.mean(list(v.values()))) if v else 0.0 for m, v in per_query.items()}


def latency_percentiles(outcomes: Sequence[QueryOutcome]) -> dict[str, dict[str, float]]:
    """``{stage: {"p50": ms, "p95": ms}}`` over the queries that report the stage."""
    stages: dict[str, list[float]] = {}
    for outcome in outcomes:
        for stage, ms in outcome.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
    return {
        stage: {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95))}
        for stage, values in stages.items()
    }
