"""The retrieval panel of an answer: every candidate with its score and rank at each stage
(dense, BM25, fused, rerank), whether it entered the context or why not, a chart of the
scores, the time each stage took, and what the answer model's prompt cost."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from app.safe_markdown import as_markdown
from retrieval.search_schemas import ContextResponse

STAGES = {"dense": "dense", "sparse": "BM25", "fused": "fused", "rerank": "rerank"}  # StageScores field -> label

REASONS = {
    "threshold": "below the score threshold",
    "duplicate": "near-duplicate of a kept passage",
    "budget": "over the token budget",
    "per_document": "enough passages from this document",
    "max_blocks": "block limit reached",
}

# (label, key in the retrieval timings, key in the answer timings)
_TIMED_STAGES = [
    ("rewrite", None, "rewrite_ms"),
    ("encode query", "encode", None),
    ("search + fusion", "search", None),
    ("rerank", "rerank", None),
    ("assemble context", "assemble", None),
    ("first token at", None, "first_token_ms"),  # since the question was sent, not a stage
    ("generation", None, "generation_ms"),
    ("total", None, "total_ms"),
]


def _label(rank: int, path: str, page: int | None) -> str:
    return f"#{rank} {path}" + (f" p.{page}" if page else "")


def candidates_table(retrieval: ContextResponse) -> pd.DataFrame:
    """One row per candidate, in the final order: stage scores and ranks, and its fate."""
    block_of = {chunk_id: block.n for block in retrieval.blocks for chunk_id in block.chunk_ids}
    reason_of = {dropped.id: dropped.reason for dropped in retrieval.dropped}
    rows = []
    for rank, hit in enumerate(retrieval.hits, 1):
        row: dict[str, object] = {"candidate": _label(rank, hit.path, hit.page)}
        if hit.id in block_of:
            row["context"] = f"in, as [{block_of[hit.id]}]"
        else:
            row["context"] = f"out: {REASONS.get(reason_of.get(hit.id, ''), 'not placed')}"
        for field, label in STAGES.items():
            stage = getattr(hit.scores, field)
            row[label] = stage.score if stage else None
            row[f"{label} rank"] = stage.rank if stage else None
        row["section"] = hit.section
        rows.append(row)
    table = pd.DataFrame(rows)
    for label in STAGES.values():  # empty cells for stages a candidate did not go through
        if label in table:
            table[label] = table[label].astype("Float64")
            table[f"{label} rank"] = table[f"{label} rank"].astype("Int64")
    return table


def score_chart(retrieval: ContextResponse) -> alt.Chart | None:
    """Grouped bars per candidate; each stage's scores are divided by that stage's best, since
    cosine, BM25, fused and rerank scores live on different scales."""
    rows = [
        {"candidate": _label(rank, hit.path, hit.page), "stage": label, "score": stage.score}
        for rank, hit in enumerate(retrieval.hits, 1)
        for field, label in STAGES.items()
        if (stage := getattr(hit.scores, field)) is not None
    ]
    if not rows:
        return None
    scores = pd.DataFrame(rows)
    best = scores.groupby("stage")["score"].transform(lambda s: s.abs().max() or 1.0)
    scores["relative"] = scores["score"] / best
    order = [label for label in STAGES.values() if label in set(scores["stage"])]
    return (
        alt.Chart(scores)
        .mark_bar()
        .encode(
            y=alt.Y("candidate:N", sort=None, title=None, axis=alt.Axis(labelLimit=260)),
            x=alt.X("relative:Q", title="score ÷ the stage's best score"),
            color=alt.Color("stage:N", sort=order, title="stage"),
            yOffset=alt.YOffset("stage:N", sort=order),
            tooltip=["candidate", "stage", alt.Tooltip("score:Q", format=".4f")],
        )
        .properties(height=max(120, 12 * len(rows)))
    )


def stage_timings(retrieval: ContextResponse, answer_timings: dict[str, float]) -> list[tuple[str, float]]:
    timings = []
    for label, retrieval_key, answer_key in _TIMED_STAGES:
        value = retrieval.timings_ms.get(retrieval_key) if retrieval_key else answer_timings.get(answer_key or "")
        if value is not None:
            timings.append((label, value))
    return timings


def model_costs(answer_timings: dict[str, float]) -> str | None:
    """The answer model's share of the wait, where its provider reports it (the local model):
    prompt tokens reused from its cache and read, its own time to a first token, tokens/s."""
    if "prompt_tokens" not in answer_timings:
        return None
    prompt = answer_timings["prompt_tokens"]
    cached = answer_timings.get("prompt_tokens_cached", 0.0)
    reading = f"{prompt - cached:,.0f} read"
    if "prompt_eval_ms" in answer_timings:
        reading += f" in {answer_timings['prompt_eval_ms']:,.0f} ms"
    parts = [f"{prompt:,.0f} prompt tokens ({cached:,.0f} reused from its cache, {reading})"]
    if "model_first_token_ms" in answer_timings:
        parts.append(f"first token {answer_timings['model_first_token_ms']:,.0f} ms after the prompt was sent")
    if answer_timings.get("generated_tokens"):
        generated = f"{answer_timings['generated_tokens']:,.0f} tokens generated"
        if "tokens_per_s" in answer_timings:
            generated += f" at {answer_timings['tokens_per_s']:,.1f} tokens/s"
        parts.append(generated)
    return "Answer model: " + " · ".join(parts)


def retrieval_panel(retrieval: ContextResponse, answer_timings: dict[str, float]) -> None:
    table = candidates_table(retrieval)
    kept = int(table["context"].str.startswith("in").sum()) if len(table) else 0
    title = f"Retrieval: {len(table)} candidates, {kept} in the context ({len(retrieval.blocks)} passages)"
    with st.expander(title, expanded=False):
        if table.empty:
            st.info("No candidates: nothing in the index matched (check the filters in the sidebar).")
        else:
            st.dataframe(
                table,
                hide_index=True,
                column_config={
                    label: st.column_config.NumberColumn(label, format="%.4f") for label in STAGES.values()
                },
            )
            chart = score_chart(retrieval)
            if chart is not None:
                st.altair_chart(chart, width="stretch")
        rerank = retrieval.rerank
        rerank_state = "applied" if rerank.applied else f"not applied ({rerank.note or 'no reranker'})"
        searched = as_markdown(retrieval.query, one_line=True)  # may be a model's rewrite
        st.caption(
            f"Reranker: {as_markdown(rerank.reranker)}, {as_markdown(rerank_state)} · context: "
            f"{retrieval.tokens_used} of {retrieval.token_budget} tokens · searched for: {searched}"
        )
        st.caption("Time per stage: " + " · ".join(f"{label} {ms:,.0f} ms" for label, ms in stage_timings(retrieval, answer_timings)))
        if (costs := model_costs(answer_timings)) is not None:
            st.caption(costs)
