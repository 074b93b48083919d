"""Paired significance of every configuration against Cairn's default, with ranx's `compare`
(a paired two-sided Student's t-test over the per-query values of each document metric)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

from ranx import Qrels, compare

from evals.metrics import DOC_METRICS, document_run

MAX_P = 0.05


@dataclass(frozen=True)
class Comparison:
    p_value: float  # 1.0 when the two runs score every query the same
    delta: float  # mean(other) - mean(reference)

    @property
    def significant(self) -> bool:
        return self.p_value < MAX_P

    @property
    def marker(self) -> str:
        """``▲`` significantly better than the reference, ``▼`` significantly worse, else nothing."""
        if not self.significant or self.delta == 0:
            return ""
        return "▲" if self.delta > 0 else "▼"


def compare_to_reference(
    qrels: Mapping[str, Mapping[str, int]],
    rankings: Mapping[str, Mapping[str, Sequence[str]]],
    reference: str,
    metrics: Sequence[str] = DOC_METRICS,
) -> dict[str, dict[str, Comparison]]:
    """``{config: {metric: Comparison}}`` for every config but ``reference``.

    ``rankings`` maps a config name to its deduplicated file ranking per query.
    """
    if reference not in rankings:
        raise ValueError(f"the reference configuration '{reference}' has no results")
    names = [reference] + [n for n in rankings if n != reference]
    if len(names) < 2:
        return {}
    runs = [document_run({q: rankings[n].get(q, []) for q in qrels}, n) for n in names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's type-safety notes and scipy's identical-sample warning
        report = compare(
            Qrels({q: dict(d) for q, d in qrels.items()}), runs, list(metrics), stat_test="student", max_p=MAX_P
        ).to_dict()
    base = report[reference]
    results: dict[str, dict[str, Comparison]] = {}
    for name in names[1:]:
        results[name] = {}
        for metric in metrics:
            p = float(base["comparisons"][name][metric])
            delta = float(report[name]["scores"][metric]) - float(base["scores"][metric])
            results[name][metric] = Comparison(p_value=1.0 if math.isnan(p) else p, delta=delta)
    return results
