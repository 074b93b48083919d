"""The semantic answer cache measured end to end on a labelled set: every question is answered
once (the extractive provider: the cache's cost is the subject, not the model's), then each
hand-written paraphrase is asked; a hit's latency is the whole answer call (embedding, lookup,
validity check against the index's file records, response).

    python -m evals.bench_cache ../shared/evalsets/python-faq
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from evals.cache_threshold import PARAPHRASES


def main(argv: list[str] | None = None) -> int:
    from retrieval.process_env import configure_process_env

    configure_process_env()
    from answers.answer_cache import AnswerCache
    from answers.schemas import AnswerRequest, FinalEvent
    from answers.service import AnswerService
    from evals.bench_report import rebuild, save_section
    from evals.dataset import corpus_hash, load_eval_set
    from evals.index_cache import EVAL_COLLECTION, IndexCache
    from evals.runner import EVAL_IDENTITY
    from retrieval.encoders import build_encoders
    from retrieval.rerank import NoReranker
    from retrieval.service import SearchService
    from retrieval.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("set_dir", type=Path)
    parser.add_argument("--cache", type=Path, default=Path(".cache/evals"), help="where indexed eval corpora are kept")
    parser.add_argument("--out", type=Path, default=Path("evals/reports/bench"))
    args = parser.parse_args(argv)

    evalset = load_eval_set(args.set_dir)
    settings = Settings(llm_providers=["extractive"])
    dense, sparse = build_encoders(settings.models)
    index = IndexCache(args.cache).open(evalset, corpus_hash(evalset.corpus_dir), settings, dense, sparse)
    try:
        local = settings.model_copy(update={"data_dir": index.folder, "collection": EVAL_COLLECTION, "qdrant_url": None})
        search = SearchService(local, index.store, dense, sparse, NoReranker())
        cache = AnswerCache(
            index.store, EVAL_COLLECTION, dense.encode_query, dense.dimension, local.answer_cache_threshold,
            local.answer_cache_max_entries, local.answer_cache_ttl_s,
        )
        cache.clear()
        answers = AnswerService(search, local.answers, cache)

        def ask(text: str):
            started = time.perf_counter()
            events = list(answers.stream(AnswerRequest(question=text, rerank=False), EVAL_IDENTITY))
            final = next(e for e in events if isinstance(e, FinalEvent))
            return final.response, (time.perf_counter() - started) * 1000

        paraphrases = [json.loads(line) for line in (PARAPHRASES / f"{evalset.name}-paraphrases.jsonl").read_text().splitlines() if line.strip()]
        by_id = {q.id: q.text for q in evalset.queries}
        miss_ms = [ask(by_id[p["id"]])[1] for p in paraphrases]  # answered anew, then kept
        hits_ms, served = [], 0
        for item in paraphrases:
            response, ms = ask(item["text"])
            if response.cache and response.cache.outcome == "hit":
                served += 1
                hits_ms.append(ms)
        cache.clear()
    finally:
        index.close()

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 1)

    data = {
        "paraphrases": len(paraphrases),
        "served_from_cache": served,
        "share_served": round(served / len(paraphrases), 3),
        "hit_ms_p50": pct(hits_ms, 0.5) if hits_ms else None,
        "hit_ms_p95": pct(hits_ms, 0.95) if hits_ms else None,
        "miss_ms_p50_extractive": round(statistics.median(miss_ms), 1),
        "threshold": local.answer_cache_threshold,
    }
    markdown = (
        f"{len(paraphrases)} hand-written paraphrases of {evalset.name} questions, each asked after its original "
        f"(extractive answers, no reranker). Served from the cache: **{served} ({data['share_served']:.0%})** at "
        f"threshold {data['threshold']}. A hit end to end (embedding, lookup, validity check, response): "
        f"**p50 {data['hit_ms_p50']} ms, p95 {data['hit_ms_p95']} ms**; answering anew took "
        f"{data['miss_ms_p50_extractive']} ms (median, extractive: a local model takes seconds)."
    )
    command = f"python -m evals.bench_cache {args.set_dir}"
    save_section(args.out, "cache", "Semantic answer cache", markdown, data, command)
    rebuild(args.out)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
