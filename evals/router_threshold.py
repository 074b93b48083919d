"""The answer router's thresholds (answers/router.py), chosen on evidence: the best retrieval
scores of questions a corpus cannot answer against those of questions it can.

- cannot answer: ``unanswerable.jsonl`` beside a set's queries (plausible questions on topics
  the corpus lacks, or answered only in documents the eval user may not read), written by hand;
- can answer: the set's own queries, and those of any other set given with ``--also`` (on
  python-faq every question is answerable, so every route there is a false refusal).

For each signal (the embedding reranker's best cosine; the dense retriever's best cosine) the
chosen threshold is the highest that routes no answerable question, less a margin (a question
worded a little worse than any seen must still reach the model). Routing is judged as a
retrieval of "cannot answer": precision = routed questions that were unanswerable / routed;
recall = unanswerable questions routed / unanswerable.

    python -m evals.router_threshold evals/data/northwind --also ../shared/evalsets/python-faq
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from retrieval.process_env import configure_process_env

configure_process_env()

UNANSWERABLE_FILE = "unanswerable.jsonl"
MARGIN = 0.02  # cosine below the lowest answerable question's score
SIGNALS = ("rerank", "dense")


@dataclass
class QuestionSignal:
    set_name: str
    query_id: str
    question: str
    answerable: bool
    rerank: float | None  # the embedding reranker's best score
    dense: float | None  # the dense retriever's best cosine


@dataclass
class SignalChoice:
    signal: str
    threshold: float
    lowest_answerable: float
    routed_unanswerable: int
    unanswerable: int
    routed_answerable: int
    answerable: int

    @property
    def precision(self) -> float | None:
        routed = self.routed_unanswerable + self.routed_answerable
        return self.routed_unanswerable / routed if routed else None

    @property
    def recall(self) -> float:
        return self.routed_unanswerable / self.unanswerable if self.unanswerable else 0.0


def unanswerable_questions(set_dir: Path) -> list[tuple[str, str]]:
    path = Path(set_dir) / UNANSWERABLE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: write the questions this set's corpus cannot answer there")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(line["id"], line["text"]) for line in lines]


def gather(set_dir: Path, questions: list[tuple[str, str, bool]], runner) -> list[QuestionSignal]:
    """Each question retrieved as the answer service does (hybrid, reranked) by the eval user."""
    from answers.router import route_signal
    from evals.dataset import corpus_hash, load_eval_set
    from evals.runner import EVAL_IDENTITY
    from retrieval.search_schemas import SearchRequest
    from retrieval.service import SearchService

    evalset = load_eval_set(set_dir)
    settings = runner.settings
    index = runner.cache.open(
        evalset, corpus_hash(evalset.corpus_dir), settings, runner.dense(settings), runner.sparse(settings)
    )
    try:
        local = index.settings
        search = SearchService(local, index.store, runner.dense(local), runner.sparse(local), runner.reranker(local))
        found = []
        for query_id, text, answerable in questions:
            context = search.context(SearchRequest(query=text, rerank=True), EVAL_IDENTITY)
            reranked = route_signal(context)
            dense = [h.scores.dense.score for h in context.hits if h.scores.dense is not None]
            found.append(
                QuestionSignal(
                    set_name=evalset.name,
                    query_id=query_id,
                    question=text,
                    answerable=answerable,
                    rerank=round(reranked[1], 4) if reranked and reranked[0] == "rerank" else None,
                    dense=round(max(dense), 4) if dense else None,
                )
            )
            print(
                f"{evalset.name} {query_id}: rerank {found[-1].rerank} dense {found[-1].dense}",
                file=sys.stderr,
                flush=True,
            )
        return found
    finally:
        index.close()


def choose(signals: list[QuestionSignal], signal: str, margin: float = MARGIN) -> SignalChoice | None:
    answerable = [getattr(s, signal) for s in signals if s.answerable and getattr(s, signal) is not None]
    unanswerable = [getattr(s, signal) for s in signals if not s.answerable and getattr(s, signal) is not None]
    if not answerable:
        return None
    lowest = min(answerable)
    threshold = round(lowest - margin, 3)
    return SignalChoice(
        signal=signal,
        threshold=threshold,
        lowest_answerable=lowest,
        routed_unanswerable=sum(v < threshold for v in unanswerable),
        unanswerable=len(unanswerable),
        routed_answerable=sum(v < threshold for v in answerable),
        answerable=len(answerable),
    )


def curve(signals: list[QuestionSignal], signal: str, thresholds: list[float]) -> list[dict[str, float | int | None]]:
    points = []
    for t in thresholds:
        a = [getattr(s, signal) for s in signals if s.answerable and getattr(s, signal) is not None]
        u = [getattr(s, signal) for s in signals if not s.answerable and getattr(s, signal) is not None]
        routed_u, routed_a = sum(v < t for v in u), sum(v < t for v in a)
        points.append(
            {
                "threshold": t,
                "routed_unanswerable": routed_u,
                "routed_answerable": routed_a,
                "precision": round(routed_u / (routed_u + routed_a), 3) if routed_u + routed_a else None,
                "recall": round(routed_u / len(u), 3) if u else None,
            }
        )
    return points


def markdown(
    signals: list[QuestionSignal],
    choices: list[SignalChoice],
    points: dict[str, list[dict]],
    command: str,
    load: tuple[float, float],
) -> str:
    sets = sorted({s.set_name for s in signals})
    lines = [
        "## Answer router: when retrieval cannot answer",
        "",
        f"Questions: {sum(not s.answerable for s in signals)} the corpus cannot answer (hand-written, "
        f"`{UNANSWERABLE_FILE}`), {sum(s.answerable for s in signals)} it can ({', '.join(sets)}). Signal: the best "
        "score of the retrieved passages (hybrid search, reranked, as the answer service retrieves), read by the "
        f"eval user (group `public`). Threshold: the lowest answerable question's score less {MARGIN}.",
        "",
        "| signal | threshold | lowest answerable | unanswerable routed (recall) | answerable routed | precision |",
        "|---|---|---|---|---|---|",
    ]
    for c in choices:
        precision = "-" if c.precision is None else f"{c.precision:.0%}"
        lines.append(
            f"| {c.signal} | {c.threshold} | {c.lowest_answerable} | {c.routed_unanswerable} of {c.unanswerable} "
            f"({c.recall:.0%}) | {c.routed_answerable} of {c.answerable} | {precision} |"
        )
    for signal, rows in points.items():
        lines += [
            "",
            f"### {signal}: routing at other thresholds",
            "",
            "| threshold | unanswerable routed | answerable routed (false refusals) | precision | recall |",
            "|---|---|---|---|---|",
        ]
        for p in rows:
            precision = "-" if p["precision"] is None else f"{p['precision']:.0%}"
            recall = "-" if p["recall"] is None else f"{p['recall']:.0%}"
            lines.append(
                f"| {p['threshold']} | {p['routed_unanswerable']} | {p['routed_answerable']} | {precision} | {recall} |"
            )
    lines += [
        "",
        "### Per question (the corpus's own set; the lowest answerable of any set)",
        "",
        "| set | id | answerable | rerank | dense | question |",
        "|---|---|---|---|---|---|",
    ]
    shown = [s for s in signals if s.set_name == signals[0].set_name]
    others = [s for s in signals if s.set_name != signals[0].set_name]
    for signal in SIGNALS:
        scored = [s for s in others if getattr(s, signal) is not None]
        shown += sorted(scored, key=lambda s: getattr(s, signal))[:3]
    seen = set()
    for s in sorted(shown, key=lambda s: (s.set_name, s.answerable, s.rerank or 0)):
        if (s.set_name, s.query_id) in seen:
            continue
        seen.add((s.set_name, s.query_id))
        answerable = "yes" if s.answerable else "no"
        lines.append(f"| {s.set_name} | {s.query_id} | {answerable} | {s.rerank} | {s.dense} | {s.question} |")
    lines += [
        "",
        f"Reproduce: `{command}` (load average {load[0]:.1f} before, {load[1]:.1f} after; scores do not depend on it).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from evals.dataset import load_eval_set
    from evals.index_cache import IndexCache
    from evals.runner import EvalRunner
    from retrieval.settings import get_settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("set_dir", type=Path, help=f"a set folder with {UNANSWERABLE_FILE} beside its queries")
    parser.add_argument(
        "--also", type=Path, action="append", default=[], help="another set: all its questions answerable"
    )
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: evals/reports/<set>/)")
    args = parser.parse_args(argv)
    before = os.getloadavg()[0]
    runner = EvalRunner(get_settings(), IndexCache())
    evalset = load_eval_set(args.set_dir)
    own = [(q.id, q.text, True) for q in evalset.queries]
    own += [(i, t, False) for i, t in unanswerable_questions(args.set_dir)]
    signals = gather(args.set_dir, own, runner)
    for other in args.also:
        extra = load_eval_set(other)
        signals += gather(other, [(q.id, q.text, True) for q in extra.queries], runner)
    choices = [c for c in (choose(signals, s) for s in SIGNALS) if c is not None]
    points = {
        c.signal: curve(
            signals, c.signal, sorted({round(c.threshold + d, 3) for d in (-0.1, -0.05, 0.0, 0.05, 0.1, 0.15)})
        )
        for c in choices
    }
    command = shlex.join(["python", "-m", "evals.router_threshold", *(argv if argv is not None else sys.argv[1:])])
    text = markdown(signals, choices, points, command, (before, os.getloadavg()[0]))
    out = args.out or Path("evals/reports") / evalset.name
    out.mkdir(parents=True, exist_ok=True)
    (out / "router.md").write_text(text + "\n", encoding="utf-8")
    (out / "router.json").write_text(
        json.dumps(
            {
                "choices": [asdict(c) | {"precision": c.precision, "recall": c.recall} for c in choices],
                "curves": points,
                "questions": [asdict(s) for s in signals],
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
