"""How close two questions must be for the semantic answer cache to serve one's answer for the
other, measured on a labelled set's questions:

- hits wanted: each question and a paraphrase of it (``evals/data/<set>-paraphrases.jsonl``,
  written by hand and read through);
- hits never wanted (near misses): each question and its nearest other question of the set, and
  every two questions answered on the same FAQ page (``faq/<page>-NNN``), and each paraphrase and
  the nearest question it does not paraphrase.

The chosen threshold is the lowest that lets none of the near misses through.

    python -m evals.cache_threshold ../shared/evalsets/python-faq
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from answers.question_match import reordered
from evals.dataset import load_eval_set

PARAPHRASES = Path(__file__).parent / "data"
_PAGE = re.compile(r"^(?P<page>.+)-\d+\.\w+$")


@dataclass(frozen=True)
class PairScores:
    """Cosines of the pairs the cache may serve; a pair the word-order guard refuses
    (answers/question_match.py) scores -1: no threshold lets it through."""

    paraphrase: list[float]  # a question and its paraphrase
    near_miss: list[float]  # two different questions
    refused_near_misses: int = 0  # near misses the guard alone stops (cosine as high as 0.995)


@dataclass(frozen=True)
class CurvePoint:
    threshold: float
    precision: float
    recall: float
    false_hits: int


def pair_scores(set_dir: Path, encode) -> PairScores:
    evalset = load_eval_set(set_dir)
    paraphrases = [json.loads(line) for line in (PARAPHRASES / f"{evalset.name}-paraphrases.jsonl").read_text().splitlines() if line.strip()]
    ids = [q.id for q in evalset.queries]
    questions = np.asarray(encode([q.text for q in evalset.queries]))
    similarity = questions @ questions.T
    np.fill_diagonal(similarity, -1.0)
    near = set()
    for i in range(len(ids)):
        near.add(tuple(sorted((i, int(similarity[i].argmax())))))
    pages: dict[str, list[int]] = {}
    for i, query_id in enumerate(ids):
        for judgement in evalset.judgements_for(query_id):
            match = _PAGE.match(judgement.doc)
            if match:
                pages.setdefault(match["page"], []).append(i)
    for members in pages.values():
        near |= {(a, b) for a in members for b in members if a < b}
    texts = [q.text for q in evalset.queries]

    def guarded(a: str, b: str, cosine: float) -> float:
        return -1.0 if reordered(a, b) else cosine

    near_miss = [guarded(texts[a], texts[b], float(similarity[a, b])) for a, b in near if texts[a] != texts[b]]
    position = {query_id: i for i, query_id in enumerate(ids)}
    rewritten = np.asarray(encode([p["text"] for p in paraphrases]))
    paraphrase = []
    for row, item in zip(rewritten, paraphrases):
        scores = questions @ row
        own = position[item["id"]]
        paraphrase.append(guarded(texts[own], item["text"], float(scores[own])))
        scores[own] = -1.0
        other = int(scores.argmax())  # the paraphrase against the nearest question it does not paraphrase
        if texts[other] != texts[own]:
            near_miss.append(guarded(texts[other], item["text"], float(scores[other])))
    return PairScores(paraphrase=paraphrase, near_miss=near_miss, refused_near_misses=sum(s == -1.0 for s in near_miss))


def curve(scores: PairScores, thresholds: list[float]) -> list[CurvePoint]:
    points = []
    for t in thresholds:
        hits = sum(s >= t for s in scores.paraphrase)
        false_hits = sum(s >= t for s in scores.near_miss)
        precision = hits / (hits + false_hits) if hits + false_hits else 1.0
        points.append(CurvePoint(round(t, 3), round(precision, 3), round(hits / len(scores.paraphrase), 3), false_hits))
    return points


def chosen_threshold(scores: PairScores) -> float:
    """Just above the closest near miss: no two different questions of the set share an answer."""
    return round(float(np.nextafter(max(scores.near_miss), 2.0)) + 0.005, 3)


def markdown(scores: PairScores, points: list[CurvePoint], threshold: float, model: str, chart: str) -> str:
    recall = sum(s >= threshold for s in scores.paraphrase) / len(scores.paraphrase)
    lines = [
        "## Semantic answer cache: similarity threshold",
        "",
        f"{len(scores.paraphrase)} hand-written paraphrases (hits wanted) against {len(scores.near_miss)} near-miss pairs "
        f"(each question and its nearest other question, questions of the same FAQ page, each paraphrase and the "
        f"nearest question it does not paraphrase), cosine of {model} query embeddings.",
        "",
        f"Chosen threshold **{threshold}** (the closest near miss is {max(scores.near_miss):.3f}): **0 false hits**, "
        f"paraphrases served from the cache: **{recall:.0%}**. Besides the threshold, {scores.refused_near_misses} "
        "near misses made of the same content words in another order (\"convert a number to a string\" / \"a string "
        "to a number\": cosine 0.995) are refused by the word-order guard (answers/question_match.py), which no "
        "threshold below 0.995 could have done.",
        "",
        "| threshold | precision | recall (paraphrases hit) | false hits |",
        "|---|---|---|---|",
    ]
    lines += [f"| {p.threshold} | {p.precision:.3f} | {p.recall:.3f} | {p.false_hits} |" for p in points]
    lines += ["", f"![precision and recall by threshold]({chart})"]
    return "\n".join(lines)


def plot(points: list[CurvePoint], threshold: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = [p.threshold for p in points]
    ax.plot(xs, [p.precision for p in points], label="precision")
    ax.plot(xs, [p.recall for p in points], label="recall (paraphrases hit)")
    ax.axvline(threshold, color="grey", linestyle="--", label=f"chosen {threshold}")
    ax.set_xlabel("cosine threshold")
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from retrieval.encoders import DenseEncoder
    from retrieval.process_env import configure_process_env
    from retrieval.settings import Settings

    configure_process_env()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("set_dir", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="default: evals/reports/<set>/")
    args = parser.parse_args(argv)
    settings = Settings()
    encoder = DenseEncoder(settings.embedding_model, models_dir=settings.embedding_model_dir)
    scores = pair_scores(args.set_dir, lambda texts: [encoder.encode_query(t) for t in texts])
    points = curve(scores, [round(x, 3) for x in np.arange(0.70, 1.0001, 0.01)])
    threshold = chosen_threshold(scores)
    out = args.out or Path("evals/reports") / load_eval_set(args.set_dir).name
    out.mkdir(parents=True, exist_ok=True)
    plot(points, threshold, out / "cache_threshold.png")
    text = markdown(scores, points, threshold, settings.embedding_model, "cache_threshold.png")
    text += f"\n\nReproduce: `python -m evals.cache_threshold {args.set_dir}`\n"
    (out / "cache_threshold.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
