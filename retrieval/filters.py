"""From a request's filters and the caller's groups to the backend-neutral `schema.Filter`.

The access condition is built from the caller's identity only: a request can narrow what
it sees, never widen it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence

from retrieval.index_schema import Condition, Filter, MatchAny, Range
from retrieval.search_schemas import SearchFilters


def access_filter(groups: Sequence[str]) -> Filter:
    """Chunks labelled with at least one of ``groups``; no groups matches nothing."""
    return Filter(must=(MatchAny("groups", tuple(groups)),))


def normalise_path_prefix(prefix: str) -> str:
    """``/docs\\guides/`` -> ``docs/guides``: the form ingestion stores in ``dirs``."""
    parts = [p for p in prefix.strip().replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts)


def normalise_file_type(file_type: str) -> str:
    """``.PDF`` -> ``pdf``."""
    return file_type.strip().lstrip(".").lower()


def epoch_seconds(moment: datetime) -> float:
    """A date without a zone is read as UTC, like the ``modified`` dates ingestion stores."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def request_conditions(filters: SearchFilters) -> tuple[Condition, ...]:
    conditions: list[Condition] = []
    if filters.file_types:
        conditions.append(MatchAny("file_type", tuple(normalise_file_type(t) for t in filters.file_types)))
    if filters.path_prefix is not None:
        prefix = normalise_path_prefix(filters.path_prefix)
        if prefix:  # "" is the root: every document is under it
            conditions.append(MatchAny("dirs", (prefix,)))
    if filters.modified_after is not None or filters.modified_before is not None:
        conditions.append(
            Range(
                "modified_ts",
                gte=epoch_seconds(filters.modified_after) if filters.modified_after else None,
                lte=epoch_seconds(filters.modified_before) if filters.modified_before else None,
            )
        )
    if filters.sources:
        conditions.append(MatchAny("source", tuple(filters.sources)))
    return tuple(conditions)


def build_filter(filters: SearchFilters, groups: Sequence[str]) -> Filter:
    """The request's conditions AND the caller's access condition."""
    return Filter(must=request_conditions(filters)).and_(access_filter(groups))
