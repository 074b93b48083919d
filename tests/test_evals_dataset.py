"""Loading and checking an eval set folder; the corpus hash; configurations from the command line."""

from __future__ import annotations

import json
import shutil

import pytest
from fixtures_evals import QRELS, QUERIES, write_jsonl, write_tiny_set

from evals.configs import ConfigError, builtin_configs, parse_config, reference_name
from evals.dataset import EvalSetError, corpus_hash, load_eval_set
from ingest.pipeline import fingerprint_of
from retrieval.settings import Settings


@pytest.fixture()
def set_dir(tmp_path):
    return write_tiny_set(tmp_path / "tiny")


def test_a_set_loads_into_typed_queries_and_judgements(set_dir):
    evalset = load_eval_set(set_dir)
    assert evalset.name == "tiny"
    assert [q.id for q in evalset.queries] == ["q1", "q2", "q3"]
    assert evalset.qrels_dict()["q2"] == {"policies/vacation.md": 1, "policies/vacation-2023.md": 1}
    assert evalset.judgements_for("q1")[0].passage.startswith("The daily meal allowance")
    limited = evalset.limited(2)
    assert [q.id for q in limited.queries] == ["q1", "q2"]
    assert {j.query_id for j in limited.judgements} == {"q1", "q2"}


def _corrupt(set_dir, file, lines):
    (set_dir / file).write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize(
    "file, lines, expected",
    [
        ("queries.jsonl", [json.dumps(QUERIES[0]), "{not json"], "queries.jsonl:2: not valid JSON"),
        ("queries.jsonl", [json.dumps({"id": "q1"})], "queries.jsonl:1: 'text': Field required"),
        (
            "queries.jsonl",
            [json.dumps(QUERIES[0]), json.dumps(QUERIES[0])],
            "queries.jsonl:2: query id 'q1' repeats line 1",
        ),
        (
            "qrels.jsonl",
            [json.dumps({**QRELS[0], "query_id": "q9"})],
            "qrels.jsonl:1: query_id 'q9' is not in queries.jsonl",
        ),
        (
            "qrels.jsonl",
            [json.dumps({**QRELS[0], "doc": "travel/missing.txt"})],
            "qrels.jsonl:1: doc 'travel/missing.txt' does not exist",
        ),
        ("qrels.jsonl", [json.dumps({**QRELS[0], "relevance": -1})], "qrels.jsonl:1: 'relevance'"),
        ("qrels.jsonl", [json.dumps(QRELS[0])], "no relevant document for queries q2, q3"),
    ],
)
def test_problems_name_the_file_and_line(set_dir, file, lines, expected):
    _corrupt(set_dir, file, lines)
    with pytest.raises(EvalSetError) as caught:
        load_eval_set(set_dir)
    assert expected in str(caught.value)


def test_a_folder_without_corpus_is_refused(tmp_path):
    write_jsonl(tmp_path / "queries.jsonl", QUERIES)
    with pytest.raises(EvalSetError, match="corpus"):
        load_eval_set(tmp_path)


def test_corpus_hash_follows_content_and_names(set_dir, tmp_path):
    corpus = set_dir / "corpus"
    first = corpus_hash(corpus)
    copy = tmp_path / "copy"
    shutil.copytree(corpus, copy)
    assert corpus_hash(copy) == first  # where the folder lives does not matter
    (copy / "travel/expenses.txt").write_text((copy / "travel/expenses.txt").read_text() + " ", encoding="utf-8")
    assert corpus_hash(copy) != first
    shutil.copytree(corpus, tmp_path / "renamed")
    (tmp_path / "renamed/kitchen/sourdough.md").rename(tmp_path / "renamed/kitchen/bread.md")
    assert corpus_hash(tmp_path / "renamed") != first


# --- configurations --------------------------------------------------------------------------


def test_builtin_rows_and_the_default():
    settings = Settings(reranker="none")
    names = [c.name for c in builtin_configs(settings, reranker_available=False)]
    assert names == [
        "bm25", "dense", "hybrid-rrf", "hybrid-rrf-unweighted", "hybrid-dbsf", "hybrid-no-length-prior",
        "dense-no-length-prior",
    ]
    reranked = builtin_configs(settings, reranker_available=True, reranker_name="embedding:m")[-1]
    assert reranked.name == "hybrid+rerank" and reranked.rerank
    assert reranked.description.endswith(f"embedding:m over the top {settings.rerank_depth}")
    assert reference_name(settings, False) == "hybrid-rrf"
    assert reference_name(Settings(fusion="dbsf"), False) == "hybrid-dbsf"
    assert reference_name(settings, True) == "hybrid+rerank"
    unweighted = next(c for c in builtin_configs(settings, False) if c.name == "hybrid-rrf-unweighted")
    applied = unweighted.settings(settings)
    assert (applied.rrf_k, applied.rrf_dense_weight, applied.rrf_sparse_weight) == (2, 1.0, 1.0)


def test_a_command_line_config_overrides_settings_and_request():
    settings = Settings()
    base = builtin_configs(settings, False)[2]
    config = parse_config(
        "wide:prefetch_limit=200,rrf_k=10,mode=hybrid,rerank=false,context_token_budget=800", base, settings
    )
    applied = config.settings(settings)
    assert (applied.prefetch_limit, applied.rrf_k, applied.context_token_budget) == (200, 10, 800)
    assert config.mode == "hybrid" and config.rerank is False
    assert fingerprint_of(applied) == fingerprint_of(settings)  # search-only: the same index
    chunky = parse_config("big:chunk_tokens=120,chunk_overlap=20", base, settings)
    assert fingerprint_of(chunky.settings(settings)) != fingerprint_of(settings)  # its own index
    baseline = parse_config("li-small:kind=llamaindex,embed_batch_size=8", base, settings)
    assert (baseline.kind, baseline.mode, baseline.rerank) == ("llamaindex", "dense", False)
    assert baseline.settings(settings).embed_batch_size == 8


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("noname", "expected NAME:key=value"),
        ("x:chunk_size=3", "unknown key 'chunk_size'"),
        ("x:prefetch_limit=many", "prefetch_limit"),
        ("x:chunk_tokens=100,chunk_overlap=100", "must be >= 0 and smaller than"),
        ("x:mode=fuzzy", "mode must be one of hybrid, dense, sparse"),
        ("x:rerank=maybe", "rerank must be true or false"),
        ("x:fusion=sum", "fusion"),
        ("x:kind=haystack", "kind must be one of cairn, llamaindex"),
        ("x:kind=llamaindex,mode=hybrid", "the llama-index baseline is dense retrieval without reranking"),
    ],
)
def test_bad_configs_say_what_is_wrong(spec, expected):
    settings = Settings()
    with pytest.raises(ConfigError, match=expected):
        parse_config(spec, builtin_configs(settings, False)[2], settings)
