"""The sidebar: index status, the acting user, filters and retrieval settings. It returns what
the next question is asked with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone

import streamlit as st
from pydantic import ValidationError

from app.client import AskOptions, CairnClient, ClientError
from retrieval.search_schemas import DocumentInfo, HealthResponse, SearchFilters
from retrieval.index_schema import parent_dirs
from retrieval.settings import Settings

ALL_FOLDERS = "(all folders)"
FUSIONS = {"rrf": "RRF (rank-based)", "dbsf": "DBSF (score-based)"}
FILL_COMMAND = "cairn ingest FOLDER"


@dataclass(frozen=True)
class AskSettings:
    filters: SearchFilters
    options: AskOptions
    user: str | None


@st.cache_data(ttl=30, show_spinner=False)
def _documents(_client: CairnClient, client_key: str, user: str | None) -> list[DocumentInfo]:
    # Listing every file record on each widget change would be slow on large indexes.
    return _client.documents(user)


def render_sidebar(client: CairnClient, settings: Settings, client_key: str) -> AskSettings:
    with st.sidebar:
        st.title("Cairn")
        st.caption(f"Answers from {client.description}.")
        user = acting_user(client)
        health, documents = index_status(client, client_key, user)
        filters = filter_controls(documents)
        options = retrieval_controls(settings, health)
        if st.button("Clear the conversation", key="clear"):
            st.session_state["turns"] = []
    return AskSettings(filters=filters, options=options, user=user)


def acting_user(client: CairnClient) -> str | None:
    users = client.users()
    if not users:
        return None
    return st.selectbox(
        "Acting user",
        users,
        key="user",
        help="Answers use only the documents this user's groups may read (CAIRN_IDENTITIES_FILE).",
    )


def index_status(client: CairnClient, client_key: str, user: str | None) -> tuple[HealthResponse | None, list[DocumentInfo]]:
    st.subheader("Index")
    try:
        health = client.health(user)
        documents = _documents(client, client_key, user) if health.index_reachable else []
    except ClientError as exc:
        st.error(str(exc))
        return None, []
    if not health.index_reachable:
        st.error(health.problem or "The index cannot be read.")
    elif health.chunks == 0:
        st.warning(f"The index is empty. Fill it with `{FILL_COMMAND}`, for example:")
        st.code("cairn ingest data/sample", language="bash")
    else:
        documents_column, chunks_column = st.columns(2)
        documents_column.metric("Documents", health.documents)
        chunks_column.metric("Chunks", health.chunks)
        last = max((d.indexed_at for d in documents if d.indexed_at), default=None)
        if last:
            st.caption(f"Last ingest: {last[:16].replace('T', ' ')} UTC")
    return health, documents


def filter_controls(documents: list[DocumentInfo]) -> SearchFilters:
    st.subheader("Filters")
    file_types = st.multiselect(
        "File type", sorted({d.file_type for d in documents if d.file_type}), key="file_types", placeholder="all types"
    )
    folders = sorted({folder for d in documents for folder in parent_dirs(d.path) if folder})
    folder = st.selectbox("Folder", [ALL_FOLDERS, *folders], key="folder")
    after = st.date_input("Modified on or after", value=None, key="after")
    before = st.date_input("Modified on or before", value=None, key="before")
    chosen = {"file_types": file_types or None, "path_prefix": None if folder == ALL_FOLDERS else folder}
    try:
        return SearchFilters(**chosen, modified_after=_start_of(after), modified_before=_end_of(before))
    except ValidationError:
        st.error("'Modified on or after' is later than 'Modified on or before': the dates are ignored.")
        return SearchFilters(**chosen)


def _start_of(day: date | None) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=timezone.utc) if day else None


def _end_of(day: date | None) -> datetime | None:
    return datetime.combine(day, time.max, tzinfo=timezone.utc) if day else None


def retrieval_controls(settings: Settings, health: HealthResponse | None) -> AskOptions:
    st.subheader("Retrieval")
    top_k = st.slider("Candidates (top-k)", 1, 50, min(settings.top_k, 50), key="top_k")
    fusion = st.radio(
        "Fusion of dense and BM25",
        list(FUSIONS),
        index=list(FUSIONS).index(settings.fusion),
        format_func=FUSIONS.__getitem__,
        key="fusion",
        horizontal=True,
    )
    reranker = health.reranker if health else None
    can_rerank = reranker is not None and reranker.applied
    rerank = st.toggle(
        "Rerank",
        value=can_rerank,
        key="rerank",
        disabled=not can_rerank,
        help=None if can_rerank or reranker is None else reranker.note,
    )
    if reranker is not None and not reranker.applied:
        st.caption(f"No reranker: {reranker.note or 'none configured'}")
    # Without a reranker the service says why in the panel; "off" would misreport it as a choice.
    return AskOptions(top_k=top_k, fusion=fusion, rerank=rerank or not can_rerank)
