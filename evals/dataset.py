"""An evaluation set on disk: ``corpus/`` + ``queries.jsonl`` + ``qrels.jsonl`` (see
../shared/evalsets/README.md), loaded into typed objects and checked line by line."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

from pydantic import BaseModel, ConfigDict, Field, ValidationError

QUERIES_FILE = "queries.jsonl"
QRELS_FILE = "qrels.jsonl"
CORPUS_DIR = "corpus"


class EvalSetError(ValueError):
    """The set folder does not follow the layout; the message names the file and line."""


class _QueryLine(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1)
    text: str = Field(min_length=1)


class _QrelLine(BaseModel):
    model_config = ConfigDict(extra="ignore")
    query_id: str = Field(min_length=1)
    doc: str = Field(min_length=1)
    relevance: int = Field(ge=0)
    passage: str = ""


@dataclass(frozen=True)
class Query:
    id: str
    text: str


@dataclass(frozen=True)
class Judgement:
    query_id: str
    doc: str  # path relative to corpus/, forward slashes
    relevance: int
    passage: str  # plain text of the relevant part of `doc` ("" when the set has none)


@dataclass(frozen=True)
class EvalSet:
    name: str
    root: Path
    queries: tuple[Query, ...]
    judgements: tuple[Judgement, ...]
    _by_query: dict[str, tuple[Judgement, ...]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def corpus_dir(self) -> Path:
        return self.root / CORPUS_DIR

    def judgements_for(self, query_id: str) -> tuple[Judgement, ...]:
        """The query's relevant judgements (relevance > 0)."""
        if not self._by_query:
            grouped: dict[str, list[Judgement]] = {}
            for j in self.judgements:
                if j.relevance > 0:
                    grouped.setdefault(j.query_id, []).append(j)
            self._by_query.update({q: tuple(js) for q, js in grouped.items()})
        return self._by_query.get(query_id, ())

    def qrels_dict(self) -> dict[str, dict[str, int]]:
        """``{query_id: {doc: relevance}}`` for the relevant documents, as ranx takes them."""
        return {q.id: {j.doc: j.relevance for j in self.judgements_for(q.id)} for q in self.queries}

    def limited(self, n: int | None) -> "EvalSet":
        """The first ``n`` queries (in file order) and their judgements; the same corpus."""
        if n is None or n >= len(self.queries):
            return self
        queries = self.queries[:n]
        kept = {q.id for q in queries}
        return replace(
            self, queries=queries, judgements=tuple(j for j in self.judgements if j.query_id in kept), _by_query={}
        )


def _jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    if not path.is_file():
        raise EvalSetError(f"{path} is missing: an evaluation set needs {QUERIES_FILE} and {QRELS_FILE}")
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvalSetError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(value, dict):
                raise EvalSetError(f"{path}:{number}: expected a JSON object, got {type(value).__name__}")
            yield number, value


def _parse(model: type[BaseModel], value: dict, path: Path, number: int):
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(f"'{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in exc.errors())
        raise EvalSetError(f"{path}:{number}: {problems}") from exc


def load_eval_set(root: Path) -> EvalSet:
    """Read and check a set folder; every problem names the file and line to fix."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise EvalSetError(f"{root} is not a folder: pass a set folder holding corpus/, {QUERIES_FILE}, {QRELS_FILE}")
    corpus = root / CORPUS_DIR
    if not corpus.is_dir():
        raise EvalSetError(f"{corpus} is missing: put the set's documents in a corpus/ folder")

    queries_path = root / QUERIES_FILE
    queries: list[Query] = []
    seen: dict[str, int] = {}
    for number, value in _jsonl(queries_path):
        line = _parse(_QueryLine, value, queries_path, number)
        if line.id in seen:
            raise EvalSetError(f"{queries_path}:{number}: query id '{line.id}' repeats line {seen[line.id]}")
        seen[line.id] = number
        queries.append(Query(id=line.id, text=line.text))
    if not queries:
        raise EvalSetError(f"{queries_path} holds no queries")

    qrels_path = root / QRELS_FILE
    judgements: list[Judgement] = []
    for number, value in _jsonl(qrels_path):
        line = _parse(_QrelLine, value, qrels_path, number)
        if line.query_id not in seen:
            raise EvalSetError(f"{qrels_path}:{number}: query_id '{line.query_id}' is not in {QUERIES_FILE}")
        if line.doc.startswith("/") or "\\" in line.doc or ".." in line.doc.split("/"):
            raise EvalSetError(
                f"{qrels_path}:{number}: doc '{line.doc}' must be a path relative to corpus/ with forward slashes"
            )
        if not (corpus / line.doc).is_file():
            raise EvalSetError(f"{qrels_path}:{number}: doc '{line.doc}' does not exist under {corpus}")
        judgements.append(Judgement(line.query_id, line.doc, line.relevance, line.passage))

    judged = {j.query_id for j in judgements if j.relevance > 0}
    unjudged = [q.id for q in queries if q.id not in judged]
    if unjudged:
        raise EvalSetError(
            f"{qrels_path}: no relevant document for queries {', '.join(unjudged[:10])}"
            f"{' ...' if len(unjudged) > 10 else ''}: add a judgement or remove them from {QUERIES_FILE}"
        )
    return EvalSet(name=root.name, root=root, queries=tuple(queries), judgements=tuple(judgements))


def corpus_hash(corpus_dir: Path) -> str:
    """sha256 over every file's relative path and bytes, in path order: changes when any file
    is added, removed, renamed or edited."""
    corpus_dir = Path(corpus_dir)
    digest = hashlib.sha256()
    for path in sorted(p for p in corpus_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(corpus_dir).as_posix()
        # the size keeps the byte stream unambiguous: no file can pass for two
        digest.update(f"{rel}\x00{path.stat().st_size}\x00".encode("utf-8"))
        with path.open("rb") as data:
            for block in iter(lambda: data.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
