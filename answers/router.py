"""Route before generating: when retrieval found nothing close enough to the question to answer
it, say so at once, with the nearest sources, instead of spending the model's time (tens of
seconds on a CPU) on a refusal.

The signal is the best score of the retrieved passages on the most telling stage that ran: the
embedding reranker's cosine (a larger model reading the whole question), else the dense
retriever's cosine. Cross-encoder and Cohere scores live on other scales, so with those rerankers
the dense cosine is read. A retrieval with no score to read (sparse only) is never routed; one
with no passage at all always is. Thresholds were chosen on questions the sample corpus cannot
answer against questions it can (evals/router_threshold.py, evals/reports/northwind/router.md).
"""

from __future__ import annotations

from typing import Literal

from answers.schemas import RouteInfo
from retrieval.search_schemas import ContextResponse

ROUTED_ANSWER = "The documents do not cover this. The nearest sources found are listed below."
NOTHING_FOUND = (
    "The documents do not cover this: no documents were found for this question. Try other words or fewer filters."
)


def route_signal(context: ContextResponse) -> tuple[Literal["rerank", "dense"], float] | None:
    """The stage the router reads and its best score; None when no stage gives one."""
    if not context.hits:
        return None
    if context.rerank.applied and context.rerank.reranker.startswith("embedding"):
        scores = [h.scores.rerank.score for h in context.hits if h.scores.rerank is not None]
        if scores:
            return "rerank", max(scores)
    scores = [h.scores.dense.score for h in context.hits if h.scores.dense is not None]
    if scores:
        return "dense", max(scores)
    return None


class AnswerRouter:
    """Decides, from the retrieval alone, whether the model is asked at all."""

    def __init__(self, min_rerank: float | None, min_dense: float | None) -> None:
        """A threshold of None never routes on that signal."""
        self.thresholds: dict[str, float | None] = {"rerank": min_rerank, "dense": min_dense}

    def decide(self, context: ContextResponse) -> RouteInfo:
        if not context.blocks:
            return RouteInfo(routed=True, signal="none", score=None, threshold=None)
        found = route_signal(context)
        if found is None:
            return RouteInfo(routed=False, signal="none", score=None, threshold=None)
        signal, score = found
        threshold = self.thresholds[signal]
        routed = threshold is not None and score < threshold
        return RouteInfo(routed=routed, signal=signal, score=round(score, 4), threshold=threshold)
