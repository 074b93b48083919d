"""The sidebar: who is asking, index status, filters and retrieval settings. It returns what
the next question is asked with, or None while nobody is signed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone

import streamlit as st
from pydantic import ValidationError

from app.client import CairnClient, ClientError, InProcessClient
from app.documents_panel import documents_panel
from app.safe_markdown import as_markdown
from retrieval.access import ANONYMOUS_USER, AuthError, Identity
from retrieval.index_schema import parent_dirs
from retrieval.search_schemas import DocumentInfo, HealthResponse, RetrievalOptions, SearchFilters
from retrieval.settings import Settings

ALL_FOLDERS = "(all folders)"
FUSIONS = {"rrf": "RRF (rank-based)", "dbsf": "DBSF (score-based)"}
MODES = {"hybrid": "dense + BM25", "dense": "dense only", "sparse": "BM25 only"}
FILL_COMMAND = "cairn ingest FOLDER"


@dataclass(frozen=True)
class AskSettings:
    options: RetrievalOptions  # the filters included
    user: str | None


@st.cache_data(ttl=30, show_spinner=False)
def _documents(_client: CairnClient, client_key: str, user: str | None) -> list[DocumentInfo]:
    # Listing every file record on each widget change would be slow on large indexes.
    return _client.documents(user)


@dataclass(frozen=True)
class Caller:
    # The name the client acts as; None: the client's own default (anonymous without an
    # identities file, or whoever CAIRN_API_KEY is over HTTP).
    user: str | None


def render_sidebar(client: CairnClient, settings: Settings, client_key: str) -> AskSettings | None:
    with st.sidebar:
        st.title("Cairn")
        st.caption(f"Answers from {as_markdown(client.description)}.")
        caller = who_is_asking(client, settings)
        if caller is None:
            return None
        user = caller.user
        health, documents = index_status(client, client_key, user)
        documents_panel(client, user)  # administrators: add, sync and remove documents
        filters = filter_controls(documents)
        options = retrieval_controls(settings, health).model_copy(update={"filters": filters})
        if st.button("Clear the conversation", key="clear"):
            st.session_state["turns"] = []
    return AskSettings(options=options, user=user)


def who_is_asking(client: CairnClient, settings: Settings) -> Caller | None:
    """With an identities file, the person proves who they are with their API key, resolved by
    the same identities as the HTTP API; None while there is no valid key (and anonymous access
    is off). Picking any user by name is a development switch, off unless configured."""
    if not client.users():  # no identities file, or the HTTP service decides from CAIRN_API_KEY
        return Caller(user=None)
    if settings.ui_dev_user_switch:
        return Caller(user=acting_user(client))
    if not isinstance(client, InProcessClient):  # a client that lists users but cannot check keys
        st.error("This client cannot check API keys: set CAIRN_API_URL, or unset CAIRN_IDENTITIES_FILE.")
        return None
    return signed_in(client)


def acting_user(client: CairnClient) -> str:
    st.warning(
        "Development switch (CAIRN_UI_DEV_USER_SWITCH): anyone at this page can act as any user, "
        "without their key. Turn it off wherever others can reach the page."
    )
    return st.selectbox(
        "Acting user",
        client.users(),
        key="user",
        help="Answers use only the documents this user's groups may read (CAIRN_IDENTITIES_FILE).",
    )


def signed_in(client: InProcessClient) -> Caller | None:
    identities = client.identities
    anonymous = identities.anonymous
    key = st.text_input(
        "API key",
        type="password",
        key="api_key",
        placeholder="your key" if anonymous is None else "none: ask as anonymous",
        help="The key whoever runs Cairn gave you (CAIRN_IDENTITIES_FILE); it decides which documents you may read.",
    ).strip()
    if not key:
        if anonymous is None:
            st.info("Enter your API key to ask questions: anonymous access is off.")
            return None
        _show_identity(anonymous)
        return Caller(user=ANONYMOUS_USER)
    try:
        identity = identities.resolve(key)
    except AuthError:
        st.error("This API key is not known: check it, or ask whoever runs Cairn for yours.")
        return None
    # The client acts by name; two entries with one name could carry other groups than this key's.
    if identities.by_user(identity.user) != identity:
        st.error(
            f"The identities file has more than one entry named '{as_markdown(identity.user)}': "
            "give each user one entry, then reload the page."
        )
        return None
    _show_identity(identity)
    return Caller(user=identity.user)


def _show_identity(identity: Identity) -> None:
    groups = ", ".join(identity.groups) or "none"
    st.success(f"Signed in as **{as_markdown(identity.user)}** · groups: {as_markdown(groups)}")


def index_status(client: CairnClient, client_key: str, user: str | None) -> tuple[HealthResponse | None, list[DocumentInfo]]:
    st.subheader("Index")
    try:
        health = client.health(user)
        documents = _documents(client, client_key, user) if health.index_reachable else []
    except ClientError as exc:
        st.error(as_markdown(str(exc)))
        return None, []
    if not health.index_reachable:
        st.error(as_markdown(health.problem or "The index cannot be read."))
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
        filled = health.rerank_vectors_filled
        if filled is not None and filled < health.chunks:
            st.progress(
                filled / health.chunks,
                text=f"Reranking vectors stored for {filled:,} of {health.chunks:,} chunks: until the rest are "
                "filled (in the background), their questions rerank more slowly.",
            )
    return health, documents


def filter_controls(documents: list[DocumentInfo]) -> SearchFilters:
    st.subheader("Filters")
    file_types = st.multiselect(
        "File type", sorted({d.file_type for d in documents if d.file_type}), key="file_types", placeholder="all types"
    )
    folders = sorted({folder for d in documents for folder in parent_dirs(d.path) if folder})
    folder = st.selectbox("Folder", [ALL_FOLDERS, *folders], key="folder")
    sources = st.multiselect(
        "Source", sorted({d.source for d in documents if d.source}), key="sources", placeholder="all sources"
    )
    after = st.date_input("Modified on or after", value=None, key="after")
    before = st.date_input("Modified on or before", value=None, key="before")
    chosen = {
        "file_types": file_types or None,
        "path_prefix": None if folder == ALL_FOLDERS else folder,
        "sources": sources or None,
    }
    try:
        return SearchFilters(**chosen, modified_after=_start_of(after), modified_before=_end_of(before))
    except ValidationError:
        st.error("'Modified on or after' is later than 'Modified on or before': the dates are ignored.")
        return SearchFilters(**chosen)


def _start_of(day: date | None) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=timezone.utc) if day else None


def _end_of(day: date | None) -> datetime | None:
    return datetime.combine(day, time.max, tzinfo=timezone.utc) if day else None


def retrieval_controls(settings: Settings, health: HealthResponse | None) -> RetrievalOptions:
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
        st.caption(f"No reranker: {as_markdown(reranker.note or 'none configured')}")
    with st.expander("More retrieval options"):
        mode = st.radio("Retrievers", list(MODES), format_func=MODES.__getitem__, key="mode", horizontal=True)
        prefetch = st.slider("Candidates per retriever", 10, 200, min(settings.prefetch_limit, 200), key="prefetch")
        token_budget = st.number_input(
            "Context tokens for the answer", 100, 8000, settings.context_token_budget, step=100, key="token_budget"
        )
    # Without a reranker the service says why in the panel; "off" would misreport it as a choice.
    return RetrievalOptions(
        top_k=top_k, mode=mode, fusion=fusion, rerank=rerank or not can_rerank, prefetch_limit=prefetch,
        token_budget=int(token_budget),
    )
