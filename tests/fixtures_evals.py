"""A tiny evaluation set whose scores are known by hand, and one eval run over it.

Corpus (4 files, every file a handful of chunks) and queries, built so BM25's ranks are certain:
- q1 "daily meal allowance abroad" -> travel/expenses.txt, the only file with those words: rank 1.
- q2 "unused vacation days carried over" -> both policies/vacation*.md (near-duplicates), the
  only files with those words: ranks 1 and 2.
- q3 "billing service released" -> kitchen/sourdough.md, which shares no word with the query:
  BM25 finds nothing (every BM25 score is 0 for it); dense retrieval ranks every chunk, so the
  file is within the top 10.
So BM25 scores 1, 1, 0 on every document metric (mean 2/3), and dense has Recall@10 = 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

MEAL_PASSAGE = "The daily meal allowance on business trips is 45 euros within the country and 60 euros abroad."
CARRY_PASSAGE = "Up to five unused vacation days can be carried over into the next calendar year."
BREAD_PASSAGE = "Feed the starter with equal weights of rye flour and water every morning until it doubles."

_VACATION = f"""# Vacation policy

## Annual leave

Every full-time employee receives 25 days of paid annual leave per calendar year. Leave
requests are submitted in the HR portal at least two weeks in advance.

## Carrying over unused days

{CARRY_PASSAGE} Carried-over days expire on March 31st; days that are not taken by then are
forfeited.
"""

_EXPENSES = f"""Travel and expenses

Book flights and trains through the travel desk. Economy class is the default for flights
shorter than six hours. {MEAL_PASSAGE} Alcohol is not reimbursed. Submit receipts in the
expense tool within one month of the trip.
"""

_SOURDOUGH = f"""# Sourdough bread

{BREAD_PASSAGE} Mix the dough, fold it four times, then let it rise overnight in a cool
place. Bake in a covered pot at a high temperature until the crust is dark brown.
"""

QUERIES = [
    {"id": "q1", "text": "What is the daily meal allowance abroad?"},
    {"id": "q2", "text": "How many unused vacation days can be carried over?"},
    {"id": "q3", "text": "How is the billing service released?"},
]
QRELS = [
    {"query_id": "q1", "doc": "travel/expenses.txt", "relevance": 1, "passage": MEAL_PASSAGE},
    {"query_id": "q2", "doc": "policies/vacation.md", "relevance": 1, "passage": CARRY_PASSAGE},
    {"query_id": "q2", "doc": "policies/vacation-2023.md", "relevance": 1, "passage": CARRY_PASSAGE},
    {"query_id": "q3", "doc": "kitchen/sourdough.md", "relevance": 1, "passage": BREAD_PASSAGE},
]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_tiny_set(root: Path) -> Path:
    corpus = root / "corpus"
    files = {
        "policies/vacation.md": _VACATION,
        "policies/vacation-2023.md": _VACATION.replace("# Vacation policy", "# Vacation policy (2023 edition)"),
        "travel/expenses.txt": _EXPENSES,
        "kitchen/sourdough.md": _SOURDOUGH,
    }
    for rel, text in files.items():
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        (corpus / rel).write_text(text, encoding="utf-8")
    write_jsonl(root / "queries.jsonl", QUERIES)
    write_jsonl(root / "qrels.jsonl", QRELS)
    return root


@pytest.fixture(scope="session")
def tiny_set_dir(tmp_path_factory) -> Path:
    return write_tiny_set(tmp_path_factory.mktemp("evals") / "tiny")


@pytest.fixture(scope="session")
def eval_cache_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("eval-cache")


@pytest.fixture(scope="session")
def tiny_run(tiny_set_dir, eval_cache_root, encoders):
    """One full eval over the tiny set: the built-in rows, a row with other chunk sizes (its
    own index), and the llama-index baseline."""
    from evals.configs import builtin_configs, parse_config, reference_name
    from evals.dataset import load_eval_set
    from evals.index_cache import IndexCache
    from evals.runner import EvalRunner, llamaindex_config
    from retrieval.settings import Settings

    settings = Settings(reranker="none")
    dense, _ = encoders
    runner = EvalRunner(settings, IndexCache(eval_cache_root), dense=dense)
    configs = builtin_configs(settings, reranker_available=False)
    reference = reference_name(settings, reranker_available=False)
    base = next(c for c in configs if c.name == reference)
    configs.append(parse_config("small-chunks:chunk_tokens=32,chunk_overlap=8", base, settings))
    configs.append(llamaindex_config(settings))
    evalset = load_eval_set(tiny_set_dir)
    return runner.run(evalset, configs, reference), runner, evalset, configs
