"""The HTTP API: one FastAPI app, thin routes over the services."""
