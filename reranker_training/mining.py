"""Mine (query, positive, hard negatives) training pairs from an indexed collection, no labels.

Three kinds of query, each paired with the text it names:
- ``heading``: a section's own heading -> the first chunk of that section;
- ``title``: a document's title -> its first passage;
- ``term``: an API signature or term on a line of its own (``os.path.join(path, *paths)``)
  -> the description that follows it, with the term itself cut out.

A query is kept only when it names exactly one place in the corpus: a heading such as
"Examples" or a title shared by many pages would make its other occurrences false negatives.
Hard negatives are what Cairn's own hybrid search returns for the query, minus chunks of the
positive's document, near-duplicates of the positive, and passages quoting the query.
Everything is deterministic for a given index and seed.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal, Sequence

from retrieval.filters import access_filter
from retrieval.index_schema import SECTION_SEPARATOR, Filter
from retrieval.search import HybridSearcher
from retrieval.store.base import IndexStore

PairKind = Literal["heading", "title", "term"]

_FIELDS = ("doc_id", "path", "title", "section", "chunk_index", "text")
_NUMBERING = re.compile(r"^\s*(?:\d+(?:\.\d+)*\.?|[IVX]+\.)\s+")  # "4.1. if Statements"
_TITLE_SPLIT = re.compile(r"\s+[—–|]\s+|\s+-\s+")
_TOKEN = re.compile(r"\w+")
# A signature or dotted name on a paragraph of its own, as API references print them.
_SIGNATURE = re.compile(
    r"^(?:(?:class|exception|async|await|coroutine|abstractmethod|classmethod|staticmethod|"
    r"awaitable|decorator|property)\s+)*[A-Za-z_][\w.]*(?:\[[^\]]*\])?\s*\(.*\)(?:\s*(?:->|→)\s*\S.*)?$"
)
_DOTTED = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")


@dataclass(frozen=True)
class Passage:
    """A chunk as mining sees it."""

    id: str
    doc_id: str
    path: str
    title: str
    section: str
    chunk_index: int
    text: str


@dataclass(frozen=True)
class QueryCandidate:
    query: str
    kind: PairKind
    positive: str
    source: Passage  # the chunk the positive comes from


@dataclass(frozen=True)
class MinedPair:
    query: str
    positive: str
    negatives: tuple[str, ...]
    kind: PairKind
    doc_id: str
    path: str
    section: str
    split: Literal["train", "dev"] = "train"

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> "MinedPair":
        data = json.loads(line)
        data["negatives"] = tuple(data["negatives"])
        return cls(**data)


@dataclass(frozen=True)
class MiningConfig:
    max_pairs: int | None = 5000  # None: every usable query
    hard_negatives: int = 3
    random_negatives: int = 1  # easy negatives keep scores calibrated across topics
    search_depth: int = 30  # hybrid hits looked at per query for hard negatives
    duplicate_threshold: float = 0.5  # token Jaccard above which a hit counts as the positive itself
    min_positive_words: int = 12
    min_query_chars: int = 4
    max_query_words: int = 24
    dev_fraction: float = 0.05  # held back to score the model before and after training
    seed: int = 13
    groups: tuple[str, ...] | None = None  # mine only what these access groups may see; None = all
    exclude_queries: frozenset[str] = frozenset()  # normalised queries never to train on


@dataclass
class MiningReport:
    chunks: int
    documents: int
    candidates: dict[str, int]  # kind -> unambiguous queries found
    ambiguous_dropped: int  # candidates whose query names several places (each place counted)
    excluded: int
    without_negatives: int
    pairs: dict[str, int] = field(default_factory=dict)  # kind -> pairs written
    train: int = 0
    dev: int = 0


def normalise_query(text: str) -> str:
    """What makes two queries the same: case, spacing, numbering and trailing marks ignored."""
    text = _NUMBERING.sub("", text.replace("¶", " "))
    return " ".join(text.lower().split()).strip(" :.")


def tokens(text: str) -> set[str]:
    return set(_TOKEN.findall(text.lower()))


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _clean(text: str) -> str:
    return " ".join(_NUMBERING.sub("", text.replace("¶", " ")).split()).strip(" :")


def _words(text: str) -> int:
    return len(text.split())


def is_term(paragraph: str) -> bool:
    """A signature (``f(x, y)``, ``class A(B)``) or dotted name on a line of its own."""
    line = paragraph.strip()
    if "\n" in line or len(line) > 120 or len(line) < 3:
        return False
    return bool(_SIGNATURE.match(line) or _DOTTED.match(line))


def read_passages(store: IndexStore, collection: str, groups: Sequence[str] | None = None) -> list[Passage]:
    """Every chunk of ``collection`` (visible to ``groups`` when given), in a stable order."""
    flt = access_filter(groups) if groups is not None else None
    passages = [
        Passage(
            id=point.id,
            doc_id=str(point.payload.get("doc_id", "")),
            path=str(point.payload.get("path", "")),
            title=str(point.payload.get("title", "")),
            section=str(point.payload.get("section", "")),
            chunk_index=int(point.payload.get("chunk_index", 0)),
            text=str(point.payload.get("text", "")),
        )
        for point in store.scroll(collection, flt, fields=_FIELDS)
    ]
    return sorted(passages, key=lambda p: (p.path, p.doc_id, p.chunk_index))


def boilerplate_title_parts(titles: Iterable[str], share: float = 0.05) -> set[str]:
    """Title segments repeated across many documents ("Python 3.11 documentation")."""
    titles = list(titles)
    counts = Counter(part.strip() for title in set(titles) for part in _TITLE_SPLIT.split(title))
    limit = max(3, share * len(set(titles)))
    return {part for part, n in counts.items() if n >= limit}


def _title_query(title: str, path: str, boilerplate: set[str]) -> str:
    """The title without repeated boilerplate; empty when it is only the file name (it says nothing)."""
    parts = [p.strip() for p in _TITLE_SPLIT.split(title) if p.strip() and p.strip() not in boilerplate]
    query = " — ".join(parts)
    stem = Path(path).stem.replace("-", " ").replace("_", " ")
    return "" if normalise_query(query.replace("-", " ").replace("_", " ")) == normalise_query(stem) else query


def interleave_kinds(candidates: Sequence[QueryCandidate], rng: random.Random) -> list[QueryCandidate]:
    """A seeded shuffle per kind, then one of each kind in turn: API references hold far more
    terms than headings, and a cap on pairs should not leave only terms."""
    by_kind: dict[str, list[QueryCandidate]] = defaultdict(list)
    for candidate in candidates:
        by_kind[candidate.kind].append(candidate)
    queues = []
    for kind in sorted(by_kind):
        rng.shuffle(by_kind[kind])
        queues.append(by_kind[kind])
    mixed = []
    for i in range(max((len(q) for q in queues), default=0)):
        mixed.extend(q[i] for q in queues if i < len(q))
    return mixed


def find_candidates(passages: Sequence[Passage], config: MiningConfig) -> tuple[list[QueryCandidate], int, int]:
    """Unambiguous queries with their positives; also how many were ambiguous and how many excluded."""
    found: list[QueryCandidate] = []
    by_doc: dict[str, list[Passage]] = defaultdict(list)
    for passage in passages:
        by_doc[passage.doc_id].append(passage)
    boilerplate = boilerplate_title_parts(p.title for p in passages)

    for doc_passages in by_doc.values():
        first = doc_passages[0]
        title = _title_query(first.title, first.path, boilerplate)
        if title and _words(first.text) >= config.min_positive_words:
            found.append(QueryCandidate(title, "title", first.text, first))
        seen_sections: set[str] = set()
        for passage in doc_passages:
            heading = _clean(passage.section.split(SECTION_SEPARATOR)[-1]) if passage.section else ""
            if heading and passage.section not in seen_sections and normalise_query(heading) != normalise_query(first.title):
                seen_sections.add(passage.section)  # the section's first chunk is its positive
                if _words(passage.text) >= config.min_positive_words:
                    found.append(QueryCandidate(heading, "heading", passage.text, passage))
            found.extend(_term_candidates(passage, config))

    keys = Counter(normalise_query(c.query) for c in found)
    usable, ambiguous, excluded = [], 0, 0
    for candidate in found:
        key = normalise_query(candidate.query)
        if keys[key] > 1:
            ambiguous += 1
        elif key in config.exclude_queries:
            excluded += 1
        elif len(key) >= config.min_query_chars and _words(candidate.query) <= config.max_query_words:
            usable.append(candidate)
    return usable, ambiguous, excluded


def _term_candidates(passage: Passage, config: MiningConfig) -> list[QueryCandidate]:
    """Each term paragraph of a chunk with the description paragraphs up to the next term."""
    paragraphs = [p.strip() for p in passage.text.split("\n\n") if p.strip()]
    found = []
    for i, paragraph in enumerate(paragraphs):
        if not is_term(paragraph):
            continue
        description = []
        for following in paragraphs[i + 1 :]:
            if is_term(following):
                break
            description.append(following)
        text = "\n\n".join(description)
        if _words(text) >= config.min_positive_words:
            found.append(QueryCandidate(paragraph, "term", text, passage))
    return found


class PairMiner:
    """Mines pairs from ``collection`` using ``searcher`` (Cairn's hybrid search) for hard negatives."""

    def __init__(self, store: IndexStore, collection: str, searcher: HybridSearcher, config: MiningConfig) -> None:
        self.store = store
        self.collection = collection
        self.searcher = searcher
        self.config = config

    def mine(self, progress: Callable[[int, int], None] | None = None) -> tuple[list[MinedPair], MiningReport]:
        """``progress(pairs so far, pairs wanted)`` is called after each pair is mined."""
        config = self.config
        passages = read_passages(self.store, self.collection, config.groups)
        candidates, ambiguous, excluded = find_candidates(passages, config)
        report = MiningReport(
            chunks=len(passages),
            documents=len({p.doc_id for p in passages}),
            candidates=dict(Counter(c.kind for c in candidates)),
            ambiguous_dropped=ambiguous,
            excluded=excluded,
            without_negatives=0,
        )
        rng = random.Random(config.seed)
        candidates = interleave_kinds(candidates, rng)
        search_filter = access_filter(config.groups) if config.groups is not None else Filter()
        pairs: list[MinedPair] = []
        wanted = len(candidates) if config.max_pairs is None else min(config.max_pairs, len(candidates))
        for candidate in candidates:
            if config.max_pairs is not None and len(pairs) >= config.max_pairs:
                break
            negatives = self._hard_negatives(candidate, search_filter)
            negatives += self._random_negatives(candidate, passages, rng, exclude=set(negatives))
            if not negatives:
                report.without_negatives += 1
                continue
            source = candidate.source
            pairs.append(
                MinedPair(candidate.query, candidate.positive, tuple(negatives), candidate.kind, source.doc_id, source.path, source.section)
            )
            if progress:
                progress(len(pairs), wanted)
        pairs = _split_dev(pairs, config.dev_fraction, rng)
        report.pairs = dict(Counter(p.kind for p in pairs))
        report.train = sum(p.split == "train" for p in pairs)
        report.dev = len(pairs) - report.train
        return pairs, report

    def _usable_negative(self, candidate: QueryCandidate, passage_doc: str, text: str, positive_tokens: set[str]) -> bool:
        if passage_doc == candidate.source.doc_id or _words(text) < 5:
            return False
        if len(candidate.query) >= 8 and candidate.query.lower() in text.lower():
            return False  # quotes the query: likely relevant, not a negative
        return jaccard(tokens(text), positive_tokens) < self.config.duplicate_threshold

    def _hard_negatives(self, candidate: QueryCandidate, search_filter: Filter) -> list[str]:
        if self.config.hard_negatives <= 0:
            return []
        outcome = self.searcher.search(candidate.query, self.config.search_depth, search_filter, mode="hybrid")
        positive_tokens = tokens(candidate.positive)
        negatives: list[str] = []
        for hit in outcome.hits:
            if hit.text in negatives or not self._usable_negative(candidate, hit.doc_id, hit.text, positive_tokens):
                continue
            negatives.append(hit.text)
            if len(negatives) == self.config.hard_negatives:
                break
        return negatives

    def _random_negatives(self, candidate: QueryCandidate, passages: Sequence[Passage], rng: random.Random, exclude: set[str]) -> list[str]:
        positive_tokens = tokens(candidate.positive)
        negatives: list[str] = []
        for _ in range(self.config.random_negatives * 10):  # a few draws; tiny corpora may have none
            if len(negatives) == self.config.random_negatives:
                break
            passage = passages[rng.randrange(len(passages))]
            if passage.text in exclude or passage.text in negatives:
                continue
            if self._usable_negative(candidate, passage.doc_id, passage.text, positive_tokens):
                negatives.append(passage.text)
        return negatives


def _split_dev(pairs: list[MinedPair], fraction: float, rng: random.Random) -> list[MinedPair]:
    """Hold back a seeded share of the queries (at least one when there are ten or more)."""
    if fraction <= 0 or len(pairs) < 10:
        return pairs
    count = max(1, round(len(pairs) * fraction))
    dev = set(rng.sample(range(len(pairs)), count))
    return [MinedPair(**{**asdict(p), "negatives": p.negatives, "split": "dev"}) if i in dev else p for i, p in enumerate(pairs)]


def write_pairs(pairs: Sequence[MinedPair], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(p.to_json() + "\n" for p in pairs), encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a file


def read_pairs(path: Path) -> list[MinedPair]:
    return [MinedPair.from_json(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_excluded_queries(path: Path) -> frozenset[str]:
    """Normalised texts of a ``queries.jsonl`` (``{"text": ...}`` per line): never trained on."""
    texts = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            texts.add(normalise_query(json.loads(line)["text"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: expected a JSON object with a 'text' field ({exc})") from exc
    return frozenset(texts)


# --- a training folder's mined data: pairs.jsonl + mining.json ---------------------------

PAIRS_FILE = "pairs.jsonl"
MINING_FILE = "mining.json"


@dataclass(frozen=True)
class MinedData:
    """What a training folder holds before any training: the pairs and how they were mined."""

    pairs: list[MinedPair]
    report: MiningReport
    config: MiningConfig
    corpus: str  # which index and collection
    command: str = ""  # the command line that mined them


def save_mined(out: Path, mined: MinedData) -> None:
    """The pairs a run trains on, kept beside its checkpoints so ``--resume`` uses the same ones."""
    write_pairs(mined.pairs, out / PAIRS_FILE)
    report, config = mined.report, mined.config
    record = {
        "corpus": mined.corpus,
        "command": mined.command,
        "report": asdict(report),
        "config": {**asdict(config), "groups": list(config.groups) if config.groups is not None else None,
                   "exclude_queries": sorted(config.exclude_queries)},
    }
    (out / MINING_FILE).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def load_mined(out: Path) -> MinedData:
    """What `save_mined` wrote in ``out``; raises FileNotFoundError naming the missing file."""
    for name in (PAIRS_FILE, MINING_FILE):
        if not (out / name).exists():
            raise FileNotFoundError(f"{out / name} is missing: this folder holds no mined pairs to resume from")
    record = json.loads((out / MINING_FILE).read_text(encoding="utf-8"))
    settings = record["config"]
    config = MiningConfig(
        **{**settings, "groups": tuple(settings["groups"]) if settings["groups"] is not None else None,
           "exclude_queries": frozenset(settings["exclude_queries"])}
    )
    return MinedData(read_pairs(out / PAIRS_FILE), MiningReport(**record["report"]), config, record["corpus"], record.get("command", ""))
