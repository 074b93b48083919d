"""Answer latency of the local model: time to first token and total time per answer, on the
sample corpus's public questions (data/sample/questions.md), through the real AnswerService.

The model is loaded before any clock starts (its load time is reported apart). Times include
retrieval, as a user waits for it. The machine's load average is reported with the numbers:
llama.cpp on 2 shared cores slows down several times when other work runs.

    python -m evals.bench_answer [--questions FILE] [--limit 10]
    (needs `make setup` and the sample corpus indexed: `make ingest-sample`)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from retrieval.process_env import configure_process_env

configure_process_env()

from answers.providers.local import local_model_path  # noqa: E402
from answers.schemas import AnswerRequest, FinalEvent, TokenEvent  # noqa: E402
from answers.service import AnswerService  # noqa: E402
from retrieval.settings import get_settings  # noqa: E402
from runtime import build_runtime  # noqa: E402

# Where the sample corpus's question table lives (it moved once; the first that exists wins).
QUESTION_FILES = (Path("data/sample/questions.md"), Path("data/sample_build/questions.md"))


def sample_questions_file() -> Path:
    """The first of QUESTION_FILES that exists (the first one when none does)."""
    return next((p for p in QUESTION_FILES if p.is_file()), QUESTION_FILES[0])


@dataclass
class SampleQuestion:
    number: int
    question: str
    sources: list[str]  # file paths that hold the expected answer


@dataclass
class AnswerTiming:
    number: int
    question: str
    provider: str
    first_token_ms: float | None
    total_ms: float
    retrieval_ms: float
    tokens: int  # streamed pieces from the model (llama.cpp streams one token per piece)
    tokens_per_s: float | None  # after the first token
    citations: int
    attributed_citations: int  # of those, matched after generation (the model wrote no mark)
    invalid_citations: int
    expected_source_cited: bool
    fallbacks: list[str]  # "provider: why it did not answer"
    answer: str


def read_questions(path: Path, limit: int) -> list[SampleQuestion]:
    """Rows ``| n | question | expected answer | `source` ... |`` of the questions file, in order
    (the public questions come first)."""
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].isdigit():
            sources = re.findall(r"`([^`]+)`", cells[3])
            questions.append(SampleQuestion(int(cells[0]), cells[1], sources))
    return questions[:limit]


def _time_one(answers: AnswerService, identity, item: SampleQuestion) -> AnswerTiming:
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    response = None
    for event in answers.stream(AnswerRequest(question=item.question), identity):
        if isinstance(event, TokenEvent):
            tokens += 1
            if first is None:
                first = time.perf_counter()
        elif isinstance(event, FinalEvent):
            response = event.response
    total = time.perf_counter() - started
    assert response is not None
    generating = total - (first - started) if first is not None else 0.0
    return AnswerTiming(
        number=item.number,
        question=item.question,
        provider=response.provider,
        first_token_ms=round((first - started) * 1000, 1) if first is not None else None,
        total_ms=round(total * 1000, 1),
        retrieval_ms=response.timings_ms.get("retrieval_ms", 0.0),
        tokens=tokens,
        tokens_per_s=round(tokens / generating, 2) if first and generating > 0 else None,
        citations=len(response.citations),
        attributed_citations=sum(c.attributed for c in response.citations),
        invalid_citations=response.invalid_citations,
        expected_source_cited=any(c.path in item.sources for c in response.citations),
        fallbacks=[f"{f.provider}: {f.error}" for f in response.fallbacks],
        answer=response.answer,
    )


def _summary(rows: list[AnswerTiming]) -> dict[str, float]:
    firsts = [r.first_token_ms for r in rows if r.first_token_ms is not None]
    totals = [r.total_ms for r in rows]
    rates = [r.tokens_per_s for r in rows if r.tokens_per_s]
    return {
        "first_token_ms_median": round(statistics.median(firsts), 1) if firsts else float("nan"),
        "first_token_ms_max": max(firsts, default=float("nan")),
        "total_ms_median": round(statistics.median(totals), 1),
        "total_ms_max": max(totals),
        "tokens_per_s_mean": round(statistics.mean(rates), 2) if rates else float("nan"),
        "expected_source_cited": sum(r.expected_source_cited for r in rows),
        "answers_with_citations": sum(r.citations > 0 for r in rows),
        "answers_with_model_citations": sum(r.citations > r.attributed_citations for r in rows),
        "invalid_citations": sum(r.invalid_citations for r in rows),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, default=None, help=f"default: {QUESTION_FILES}")
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("evals/runs/bench_answer.json"))
    args = parser.parse_args(argv)

    path = args.questions or sample_questions_file()
    if not path.is_file():
        print(f"error: {path} is missing (the sample questions)", file=sys.stderr)
        return 2
    questions = read_questions(path, args.limit)
    # The local model alone, never given up on: a fallback answer would time something else.
    base = get_settings()
    settings = base.model_copy(
        update={"llm_providers": ["local"], "llm_timeout_s": max(base.llm_timeout_s, 1800.0)}
    )
    runtime = build_runtime(settings)
    answers = runtime.answers
    local = answers.provider("local")
    problem = local.unavailable_reason()
    if problem:
        print(f"error: local: {problem}", file=sys.stderr)
        return 1
    loading = time.perf_counter()
    local.prepare()
    load_s = time.perf_counter() - loading
    identity = runtime.identities.resolve(None)

    load_before = os.getloadavg()
    rows = []
    for item in questions:
        row = _time_one(answers, identity, item)
        rows.append(row)
        first = f"{row.first_token_ms:.0f}" if row.first_token_ms is not None else "-"
        print(
            f"Q{row.number:>2} {row.provider:<10} first token {first:>6} ms  total "
            f"{row.total_ms:>7.0f} ms  {row.tokens:>3} tokens  {row.tokens_per_s or 0:5.1f} tok/s  "
            f"cited {row.citations} (expected source cited: {row.expected_source_cited})",
            flush=True,
        )
    load_after = os.getloadavg()
    answers.search.close()

    report = {
        "model": str(local_model_path(settings.answers)),
        "threads": settings.llm_threads,
        "max_tokens": settings.llm_max_tokens,
        "model_load_s": round(load_s, 2),
        "load_average_1m": {"before": load_before[0], "after": load_after[0]},
        "cpu_count": os.cpu_count(),
        "summary": _summary(rows),
        "answers": [asdict(r) for r in rows],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps(report["summary"], indent=2))
    print(f"load average (1 min) {load_before[0]:.1f} -> {load_after[0]:.1f}; written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
