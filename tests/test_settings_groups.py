"""Settings are grouped by concern: every setting belongs to a group, each group is a frozen,
hashable view with the same names (so the same environment variables), and no library module
reads settings behind its caller's back."""

from __future__ import annotations

import ast
from pathlib import Path

from retrieval.settings import GROUP_FIELDS, RerankSettings, Settings, settings_group

REPO = Path(__file__).resolve().parent.parent
LIBRARY = ("retrieval", "ingest", "answers", "runtime")


def test_every_setting_belongs_to_a_group():
    grouped = {name for fields in GROUP_FIELDS.values() for name in fields}
    assert set(Settings.model_fields) - grouped == set()
    assert grouped - set(Settings.model_fields) == set()


def test_a_group_reads_the_same_environment_variables(monkeypatch):
    monkeypatch.setenv("CAIRN_RERANK_DEPTH", "17")
    monkeypatch.setenv("CAIRN_DOC_LENGTH_PRIOR", "0.07")
    rerank = Settings(_env_file=None).rerank
    assert (rerank.rerank_depth, rerank.doc_length_prior) == (17, 0.07)


def test_groups_are_frozen_and_key_caches_by_value():
    a, b = Settings(_env_file=None), Settings(_env_file=None, reranker_embedding_model="other")
    assert hash(a.rerank) == hash(settings_group(a, RerankSettings)) and a.rerank == a.rerank
    assert a.rerank != b.rerank  # a changed reranker model is another cache entry
    for group in GROUP_FIELDS:
        hash(getattr(a, group))  # lists are tuples: every group can key a cache


def test_no_library_module_reads_settings_by_itself():
    offenders = []
    for package in LIBRARY:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "get_settings":
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []
