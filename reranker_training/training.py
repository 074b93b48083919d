"""Fine-tune a `sentence_transformers.CrossEncoder` (one relevance logit) on mined pairs.

Each step takes ``queries_per_step`` queries with their positive and negatives and applies a
sentence-transformers loss: ``listwise`` (`MultipleNegativesRankingLoss`: softmax over each
query's positive, its hard negatives and one in-batch negative) or ``bce``
(`BinaryCrossEntropyLoss`, positives weighted up to balance the negatives). A small loop rather than `CrossEncoderTrainer`:
the trainer needs the `datasets` package, which Cairn does not ship, and this loop checkpoints
exactly what resuming needs (weights, optimizer, schedule, data position, RNG) every
``checkpoint_steps``, so a run cut by ``time_limit_s`` or a kill continues with ``resume``.
"""

from __future__ import annotations

import hashlib
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Literal, Sequence

from reranker_training.mining import MinedPair
from retrieval.model_sources import resolve_model
from retrieval.settings import DEFAULT_EMBEDDING_MODEL

CHECKPOINTS = "checkpoints"
STATE_FILE = "training_state.pt"  # written last: its presence marks a complete checkpoint


class TrainingError(RuntimeError):
    """A run that cannot start or resume; the message says what to do."""


@dataclass(frozen=True)
class TrainingConfig:
    base_model: str = DEFAULT_EMBEDDING_MODEL  # a bi-encoder gets a fresh classification head
    max_length: int = 256  # train at the length used at inference (CAIRN_RERANK_MAX_LENGTH)
    loss: Literal["listwise", "bce"] = "listwise"
    queries_per_step: int = 8  # each brings its positive and negatives (~5 pairs)
    max_negatives: int | None = None  # per query, hardest first; fewer makes a step cheaper
    learning_rate: float = 5e-5  # the head starts from scratch: higher than a plain fine-tune
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    epochs: float = 1.0
    max_steps: int | None = None  # overrides epochs
    time_limit_s: float | None = None  # stop (after a checkpoint) once this much time was spent
    checkpoint_steps: int = 50
    keep_checkpoints: int = 2
    seed: int = 13
    fp16_weights: bool = True  # halves the saved model (MiniLM: ~45 MB); loaded back as fp32


@dataclass(frozen=True)
class RankingScore:
    """How a model ranks each held-out query's positive among its negatives."""

    pairs: int
    loss: float  # -log softmax of the positive's logit within its group: falls as ranking improves
    mrr: float
    accuracy: float  # share of queries whose positive ranks first


@dataclass
class TrainingResult:
    out: Path
    steps: int
    total_steps: int
    seconds: float  # over every resumed part of the run
    train_pairs: int
    losses: list[float] = field(default_factory=list)  # mean loss of each step, in order
    dev_before: RankingScore | None = None
    dev_after: RankingScore | None = None

    @property
    def finished(self) -> bool:
        return self.steps >= self.total_steps


def pairs_digest(pairs: Sequence[MinedPair]) -> str:
    digest = hashlib.sha256()
    for pair in pairs:
        digest.update(pair.to_json().encode())
    return digest.hexdigest()[:16]


def load_cross_encoder(model: str, max_length: int):
    from sentence_transformers import CrossEncoder

    return CrossEncoder(resolve_model(model), num_labels=1, max_length=max_length, device="cpu")


def complete_checkpoints(out: Path) -> list[Path]:
    """Checkpoint folders whose state file was written, oldest first."""
    folder = Path(out) / CHECKPOINTS
    return sorted(p for p in folder.glob("step-*") if (p / STATE_FILE).exists()) if folder.exists() else []


def saved_config(out: Path) -> TrainingConfig | None:
    """The configuration the run in ``out`` started with, from its latest complete checkpoint."""
    import torch

    done = complete_checkpoints(out)
    if not done:
        return None
    return TrainingConfig(**torch.load(done[-1] / STATE_FILE, weights_only=False)["config"])


def rows_of(pair: MinedPair) -> list[tuple[str, str, float]]:
    return [(pair.query, pair.positive, 1.0)] + [(pair.query, negative, 0.0) for negative in pair.negatives]


def listwise_columns(batch: Sequence[MinedPair]) -> list[list[str]]:
    """[queries, positives, negatives_1, ..., negatives_k]: equal columns, a short list padded
    with the other queries' positives (passages from elsewhere in the corpus)."""
    width = max(len(pair.negatives) for pair in batch)
    columns: list[list[str]] = [[p.query for p in batch], [p.positive for p in batch]] + [[] for _ in range(width)]
    for i, pair in enumerate(batch):
        fillers = [other.positive for j, other in enumerate(batch) if j != i and other.positive != pair.positive]
        negatives = list(pair.negatives) + fillers
        negatives += [negatives[-1]] * (width - len(negatives))  # a batch of one, with nothing to borrow
        for k in range(width):
            columns[2 + k].append(negatives[k])
    return columns


def score_ranking(model, pairs: Sequence[MinedPair], batch_size: int = 32) -> RankingScore | None:
    """Listwise loss, MRR and accuracy@1 of ``model`` on ``pairs`` (each positive among its negatives)."""
    import torch

    if not pairs:
        return None
    rows = [row for pair in pairs for row in rows_of(pair)]
    logits = model.predict(
        [(q, p) for q, p, _ in rows], batch_size=batch_size, activation_fn=torch.nn.Identity(),
        show_progress_bar=False, convert_to_tensor=True,
    ).float().view(-1)
    losses, reciprocal, first, start = [], [], 0, 0
    for pair in pairs:
        group = logits[start : start + 1 + len(pair.negatives)]
        start += len(group)
        losses.append(float(-torch.log_softmax(group, dim=0)[0]))
        rank = 1 + int((group[1:] > group[0]).sum())
        reciprocal.append(1.0 / rank)
        first += rank == 1
    n = len(pairs)
    return RankingScore(pairs=n, loss=round(sum(losses) / n, 4), mrr=round(sum(reciprocal) / n, 4), accuracy=round(first / n, 4))


class RerankerTrainer:
    """Trains into ``out``: ``checkpoints/step-N/`` while running, the final model in ``out`` itself."""

    def __init__(
        self,
        out: Path,
        pairs: Sequence[MinedPair],
        config: TrainingConfig,
        on_step: Callable[[int, int, float], None] | None = None,
    ) -> None:
        self.out = Path(out)
        self.config = config
        self.train_pairs = [p for p in pairs if p.split == "train"]
        self.dev_pairs = [p for p in pairs if p.split == "dev"]
        self.digest = pairs_digest(pairs)
        self.on_step = on_step  # (step, total_steps, loss): progress for a front end
        if not self.train_pairs:
            raise TrainingError("no training pairs: the index gave no usable (query, passage) pairs; index more documents")

    # --- the schedule --------------------------------------------------------------------
    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train_pairs) / self.config.queries_per_step)

    @property
    def total_steps(self) -> int:
        if self.config.max_steps is not None:
            return self.config.max_steps
        return max(1, math.ceil(self.config.epochs * self.steps_per_epoch))

    def batch(self, step: int) -> list[MinedPair]:
        """The queries of ``step``: a seeded permutation per epoch, so a resumed run sees the same order."""
        epoch, offset = divmod(step, self.steps_per_epoch)
        order = list(range(len(self.train_pairs)))
        random.Random(self.config.seed * 1_000_003 + epoch).shuffle(order)
        size, keep = self.config.queries_per_step, self.config.max_negatives
        pairs = [self.train_pairs[i] for i in order[offset * size : (offset + 1) * size]]
        return pairs if keep is None else [replace(p, negatives=p.negatives[:keep]) for p in pairs]

    # --- checkpoints ---------------------------------------------------------------------
    def latest_checkpoint(self) -> Path | None:
        done = complete_checkpoints(self.out)
        return done[-1] if done else None

    def _save_checkpoint(self, model, optimizer, scheduler, step: int, losses: list[float], seconds: float, dev_before) -> None:
        import numpy as np
        import torch

        folder = self.out / CHECKPOINTS / f"step-{step:07d}"
        if folder.exists():
            shutil.rmtree(folder)
        model.save_pretrained(str(folder))
        state = {
            "step": step,
            "losses": losses,
            "seconds": seconds,
            "pairs_digest": self.digest,
            "config": asdict(self.config),
            "dev_before": asdict(dev_before) if dev_before else None,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()},
        }
        torch.save(state, folder / STATE_FILE)
        for old in complete_checkpoints(self.out)[: -self.config.keep_checkpoints]:
            shutil.rmtree(old)

    # --- the run -------------------------------------------------------------------------
    def _loss(self, loss_fn, batch: list[MinedPair]):
        import torch

        if self.config.loss == "listwise":
            return loss_fn(listwise_columns(batch), torch.zeros(len(batch)))  # labels unused: column 1 is positive
        queries, passages, labels = zip(*(row for pair in batch for row in rows_of(pair)))
        return loss_fn([list(queries), list(passages)], torch.tensor(labels))

    def train(self, resume: bool = False) -> TrainingResult:
        import numpy as np
        import torch
        from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss, MultipleNegativesRankingLoss
        from transformers import get_linear_schedule_with_warmup

        config = self.config
        checkpoint = self.latest_checkpoint() if resume else None
        if resume and checkpoint is None:
            raise TrainingError(f"--resume: no complete checkpoint under {self.out / CHECKPOINTS}; start without --resume")
        state = torch.load(checkpoint / STATE_FILE, weights_only=False) if checkpoint else None
        if state and state["pairs_digest"] != self.digest:
            raise TrainingError(
                f"--resume: the pairs in {self.out} changed since {checkpoint.name} was written; "
                "start a new run in another --out folder"
            )

        torch.manual_seed(config.seed)
        random.seed(config.seed)
        np.random.seed(config.seed)
        model = load_cross_encoder(str(checkpoint) if checkpoint else config.base_model, config.max_length)
        if config.loss == "listwise":
            loss_fn = MultipleNegativesRankingLoss(model, num_negatives=1)
        else:
            negatives = sum(len(p.negatives[: config.max_negatives]) for p in self.train_pairs) / len(self.train_pairs)
            loss_fn = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(negatives))
        no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias")
        params = list(model.named_parameters())
        optimizer = torch.optim.AdamW(
            [
                {"params": [p for n, p in params if not any(k in n for k in no_decay)], "weight_decay": config.weight_decay},
                {"params": [p for n, p in params if any(k in n for k in no_decay)], "weight_decay": 0.0},
            ],
            lr=config.learning_rate,
        )
        total = self.total_steps
        scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total), total)

        step, losses, spent, dev_before = 0, [], 0.0, None
        if state:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            step, losses, spent = state["step"], list(state["losses"]), state["seconds"]
            dev_before = RankingScore(**state["dev_before"]) if state["dev_before"] else None
            torch.set_rng_state(state["rng"]["torch"])
            random.setstate(state["rng"]["python"])
            np.random.set_state(state["rng"]["numpy"])
        else:
            model.eval()
            with torch.no_grad():
                dev_before = score_ranking(model, self.dev_pairs)

        started = time.perf_counter()
        last_saved = step
        model.train()
        while step < total:
            loss = self._loss(loss_fn, self.batch(step))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            losses.append(round(float(loss.detach()), 5))
            if self.on_step:
                self.on_step(step, total, losses[-1])
            elapsed = spent + time.perf_counter() - started
            out_of_time = config.time_limit_s is not None and elapsed >= config.time_limit_s
            if step % config.checkpoint_steps == 0 or out_of_time or step == total:
                self._save_checkpoint(model, optimizer, scheduler, step, losses, elapsed, dev_before)
                last_saved = step
            if out_of_time:
                break
        if last_saved != step:
            self._save_checkpoint(model, optimizer, scheduler, step, losses, spent + time.perf_counter() - started, dev_before)

        model.eval()
        with torch.no_grad():
            dev_after = score_ranking(model, self.dev_pairs)
        seconds = round(spent + time.perf_counter() - started, 1)
        result = TrainingResult(self.out, step, total, seconds, len(self.train_pairs), losses, dev_before, dev_after)
        save_model(model, self.out, config.fp16_weights)
        return result


def save_model(model, out: Path, fp16: bool) -> None:
    """The final model in ``out``: fp16 weights, with a config that loads them back as fp32 on CPU."""
    import json

    import torch

    model.save_pretrained(str(out))
    if fp16:
        from safetensors.torch import load_file, save_file

        weights = out / "model.safetensors"
        tensors = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in load_file(str(weights)).items()}
        save_file(tensors, str(weights), metadata={"format": "pt"})
        config_file = out / "config.json"
        config = json.loads(config_file.read_text())
        config["dtype"] = "float32"  # CPUs run fp32 far faster than fp16
        config_file.write_text(json.dumps(config, indent=2) + "\n")
