"""The llama.cpp settings bench on the packaged SmolLM2 (real llama.cpp, a short prompt): every
setting is measured in every round, and a setting that cannot be read is refused by name."""

from __future__ import annotations

import pytest
from fixtures_answer import smollm2_gguf

from evals.bench_llm import bench, markdown, parse_setting


def test_a_setting_is_read_whole_or_refused_naming_the_part():
    assert parse_setting("threads=2, threads_batch=1,batch=64").batch == 64
    with pytest.raises(ValueError, match="'batch=0' must be one of"):
        parse_setting("threads=2,threads_batch=2,batch=0")
    with pytest.raises(ValueError, match="missing threads_batch"):
        parse_setting("threads=2,batch=64")


def test_each_setting_is_measured_each_round():
    settings = [
        parse_setting("threads=2,threads_batch=2,batch=512"),
        parse_setting("threads=1,threads_batch=1,batch=8"),
    ]
    results = bench(smollm2_gguf(), settings, rounds=2, prompt_tokens=48, generate=2)
    assert [r.setting for r in results] == [s.name for s in settings]
    assert all(
        len(r.prompt_seconds) == 2 and r.prompt_tokens_per_s > 0 and r.generation_tokens_per_s > 0 for r in results
    )
    text = markdown("smollm2.gguf", results, 2, (1.0, 1.0))
    assert "| threads=1,threads_batch=1,batch=8 |" in text and "| 1.00x |" in text
