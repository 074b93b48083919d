"""Shared fixtures, one module per part (loaded once per session, so models load once)."""

pytest_plugins = [
    "fixtures_ingest", "fixtures_retrieval", "fixtures_answer", "fixtures_evals", "fixtures_ui", "fixtures_deploy",
    "fixtures_live",
]
