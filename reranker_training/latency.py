"""What a reranker costs per query: p50/p95 to score N candidates, per max length and runtime.

Runtimes: the PyTorch `CrossEncoder` as search uses it, and (measurement only) the same weights
exported to ONNX and run by onnxruntime, in fp32 and dynamically quantised to int8.
sentence-transformers' own ONNX backend needs `optimum-onnx`, which requires transformers < 4.58
(Cairn pins 5.x), so the export here goes through `torch.onnx` directly.

    python -m reranker_training.latency MODEL_DIR PAIRS_JSONL [--candidates 50] [--lengths 256,128]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

Scorer = Callable[[str, Sequence[str]], list[float]]


@dataclass(frozen=True)
class LatencyResult:
    runtime: str
    max_length: int
    candidates: int
    p50_ms: float
    p95_ms: float
    cpu_ms: float  # median CPU time of this process per query: what it costs without neighbours
    queries: int
    dev_mrr: float | None  # the held-out mined pairs, scored by this runtime at this length


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def dev_mrr(scorer: Scorer, pairs_file: Path) -> float | None:
    """MRR of each held-out query's positive among its negatives: the quality side of the trade."""
    rows = [json.loads(line) for line in pairs_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    dev = [row for row in rows if row.get("split") == "dev"]
    if not dev:
        return None
    reciprocal = []
    for row in dev:
        scores = scorer(row["query"], [row["positive"], *row["negatives"]])
        reciprocal.append(1.0 / (1 + sum(s > scores[0] for s in scores[1:])))
    return round(sum(reciprocal) / len(reciprocal), 4)


def measure(scorers: dict[tuple[str, int], Scorer], queries: Sequence[tuple[str, list[str]]]) -> dict[tuple[str, int], LatencyResult]:
    """Each query scored by every (runtime, max length) in turn: on a shared machine, neighbours'
    load then falls on all of them alike, so their ratios hold even where absolute times do not."""
    wall: dict[tuple[str, int], list[float]] = {key: [] for key in scorers}
    cpu: dict[tuple[str, int], list[float]] = {key: [] for key in scorers}
    for scorer in scorers.values():
        scorer(*queries[0])  # warm-up: first-call allocations are not a query's cost
    for query, passages in queries:
        for key, scorer in scorers.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            scorer(query, passages)
            wall[key].append((time.perf_counter() - start) * 1000)
            cpu[key].append((time.process_time() - start_cpu) * 1000)
    return {
        key: LatencyResult(
            key[0], key[1], len(queries[0][1]), round(statistics.median(wall[key]), 1), round(percentile(wall[key], 0.95), 1),
            round(statistics.median(cpu[key]), 1), len(queries), None,
        )
        for key in scorers
    }


def torch_scorer(model_dir: str, max_length: int, batch_size: int = 32) -> Scorer:
    from retrieval.rerank import CrossEncoderReranker

    reranker = CrossEncoderReranker(model_dir, max_length=max_length, batch_size=batch_size)
    if not reranker.available:
        raise SystemExit(f"cannot load {model_dir}: {reranker.unavailable_reason}")
    return reranker.score


def onnx_scorer(model_dir: str, max_length: int, int8: bool, work: Path) -> Scorer:
    """The model exported once per call to ONNX (optionally int8-quantised), run by onnxruntime."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
    path = work / "model.onnx"
    if not path.exists():
        sample = tokenizer(["q"], ["p"], return_tensors="pt")
        names = ["input_ids", "attention_mask", "token_type_ids"]
        torch.onnx.export(
            model, tuple(sample[n] for n in names), str(path), input_names=names, output_names=["logits"],
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}},
            opset_version=17, dynamo=False,
        )
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = work / "model.int8.onnx"
        if not quantized.exists():
            quantize_dynamic(str(path), str(quantized), weight_type=QuantType.QInt8)
        path = quantized
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def score(query: str, passages: Sequence[str]) -> list[float]:
        batch = tokenizer([query] * len(passages), list(passages), truncation="only_second", max_length=max_length,
                          padding=True, return_tensors="np")
        feed = {n: batch[n].astype(np.int64) for n in ("input_ids", "attention_mask", "token_type_ids")}
        return session.run(["logits"], feed)[0][:, 0].tolist()

    return score


def candidate_sets(pairs_file: Path, candidates: int, queries: int) -> list[tuple[str, list[str]]]:
    """Real query and passage texts from a mined pairs.jsonl: each query with ``candidates`` passages."""
    rows = [json.loads(line) for line in pairs_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    pool = [text for row in rows for text in [row["positive"], *row["negatives"]]]
    if len(pool) < candidates:
        raise SystemExit(f"{pairs_file} holds {len(pool)} passages; need at least {candidates}")
    return [(rows[i % len(rows)]["query"], [pool[(i * 7 + j) % len(pool)] for j in range(candidates)]) for i in range(queries)]


def main(argv: Sequence[str] | None = None) -> None:
    from retrieval.process_env import configure_process_env

    configure_process_env()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a trained cross-encoder folder")
    parser.add_argument("pairs", type=Path, help="a mined pairs.jsonl (real passage texts)")
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--lengths", default="256,128")
    parser.add_argument("--runtimes", default="torch,onnx,onnx-int8")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    sets = candidate_sets(args.pairs, args.candidates, args.queries)
    with tempfile.TemporaryDirectory() as work:
        scorers: dict[tuple[str, int], Scorer] = {}
        for runtime in args.runtimes.split(","):
            for length in (int(x) for x in args.lengths.split(",")):
                if runtime == "torch":
                    scorers[(runtime, length)] = torch_scorer(args.model, length)
                else:
                    scorers[(runtime, length)] = onnx_scorer(args.model, length, runtime == "onnx-int8", Path(work))
        timed = measure(scorers, sets)
        results = [replace(timed[key], dev_mrr=dev_mrr(scorer, args.pairs)) for key, scorer in scorers.items()]
    for r in results:
        print(f"{r.runtime:10s} max_length {r.max_length:4d}: {r.candidates} candidates p50 {r.p50_ms} ms, "
              f"p95 {r.p95_ms} ms, CPU {r.cpu_ms} ms; held-out mined MRR {r.dev_mrr}", flush=True)
    if args.out:
        args.out.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")


if __name__ == "__main__":
    main()
