"""Process-wide environment for running offline on small CPUs, applied once at start-up."""

from __future__ import annotations

import os

_OFFLINE_DEFAULTS = {
    # Model hubs are unreachable: fail fast instead of retrying downloads.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    # With 2 cores and any other load, busy-waiting OpenMP threads slow torch 5-10x.
    "OMP_WAIT_POLICY": "PASSIVE",
    # unstructured's telemetry.
    "SCARF_NO_ANALYTICS": "true",
    "DO_NOT_TRACK": "true",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    # Chunking counts tokens of whole sections on purpose; the length warning is noise.
    "TRANSFORMERS_VERBOSITY": "error",
}


def configure_process_env() -> None:
    """Set the offline defaults without overriding what the user exported."""
    for key, value in _OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)
