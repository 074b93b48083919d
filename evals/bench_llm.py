"""llama.cpp's batch and thread settings, measured: prompt reading (tokens/s) of one fixed prompt
of about 1,000 tokens, and generation (tokens/s) after it, for each setting side by side.

Every round runs each setting once, in a rotated order, so that load from other processes falls
on all of them alike; the medians over the rounds are reported with the load average. Each run
starts from an empty KV cache (what a question pays past the fixed instructions).

    python -m evals.bench_llm [--model FILE] [--rounds 3] [--setting threads=2,threads_batch=2,batch=512 ...]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from retrieval.process_env import configure_process_env

configure_process_env()

# The setting llama-cpp-python uses when given nothing but n_threads=2 comes first.
DEFAULT_GRID = (
    "threads=2,threads_batch=2,batch=512",
    "threads=2,threads_batch=2,batch=64",
    "threads=2,threads_batch=2,batch=128",
    "threads=2,threads_batch=2,batch=256",
    "threads=2,threads_batch=2,batch=1024",
    "threads=2,threads_batch=1,batch=512",
    "threads=1,threads_batch=1,batch=512",
    "threads=2,threads_batch=3,batch=512",
)
_KEYS = {"threads", "threads_batch", "batch"}
# Sample documents read as the prompt: the same kind of text the answers read.
_SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"
_PROMPT_FILES = tuple(
    _SAMPLE / name
    for name in (
        "intranet/travel-expense-policy.html",
        "engineering/incident-runbook-fleet-telemetry.md",
        "it/it-helpdesk-faq.txt",
        "guides/onboarding-guide.md",
    )
)


@dataclass(frozen=True)
class LlamaSetting:
    threads: int
    threads_batch: int
    batch: int

    @property
    def name(self) -> str:
        return f"threads={self.threads},threads_batch={self.threads_batch},batch={self.batch}"


@dataclass
class SettingResult:
    setting: str
    prompt_tokens: int
    prompt_tokens_per_s: float  # median over rounds
    generation_tokens_per_s: float
    prompt_seconds: list[float]


def parse_setting(text: str) -> LlamaSetting:
    values: dict[str, int] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = item.partition("=")
        if not eq or key.strip() not in _KEYS or not value.strip().isdigit() or int(value) < 1:
            raise ValueError(
                f"--setting '{text}': '{item}' must be one of {', '.join(sorted(_KEYS))} = a positive integer"
            )
        values[key.strip()] = int(value)
    missing = _KEYS - values.keys()
    if missing:
        raise ValueError(f"--setting '{text}': missing {', '.join(sorted(missing))}")
    return LlamaSetting(**values)


def fixed_prompt(llama, tokens: int) -> list[int]:
    """The first ``tokens`` tokens of the sample documents, always the same."""
    text = "\n\n".join(p.read_text(encoding="utf-8", errors="replace") for p in _PROMPT_FILES)
    ids = llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    if len(ids) < tokens:
        raise ValueError(f"the sample documents hold only {len(ids)} tokens; ask for fewer with --prompt-tokens")
    return ids[:tokens]


def run_once(model: Path, setting: LlamaSetting, prompt_tokens: int, generate: int) -> tuple[float, float]:
    """Seconds to read the prompt, and generation tokens/s after it (greedy)."""
    import numpy as np
    from llama_cpp import Llama

    llama = Llama(
        model_path=str(model),
        n_ctx=4096,
        n_threads=setting.threads,
        n_threads_batch=setting.threads_batch,
        n_batch=setting.batch,
        n_ubatch=setting.batch,
        verbose=False,
    )
    try:
        prompt = fixed_prompt(llama, prompt_tokens)
        llama.eval(prompt[:8])  # first touch of the weights, not timed
        llama.reset()
        llama._ctx.kv_cache_clear()
        started = time.perf_counter()
        llama.eval(prompt)
        prompt_s = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(generate):
            logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),))
            token = int(np.argmax(logits))
            llama.eval([token])
        generation_tps = generate / (time.perf_counter() - started)
        return prompt_s, generation_tps
    finally:
        llama.close()


def bench(
    model: Path, settings: list[LlamaSetting], rounds: int, prompt_tokens: int, generate: int
) -> list[SettingResult]:
    prompt_s: dict[str, list[float]] = {s.name: [] for s in settings}
    gen_tps: dict[str, list[float]] = {s.name: [] for s in settings}
    for r in range(rounds):
        order = settings[r % len(settings) :] + settings[: r % len(settings)]
        for setting in order:
            seconds, tps = run_once(model, setting, prompt_tokens, generate)
            prompt_s[setting.name].append(round(seconds, 3))
            gen_tps[setting.name].append(tps)
            print(
                f"round {r + 1} {setting.name}: prompt {prompt_tokens / seconds:.1f} tok/s, generation {tps:.2f} tok/s",
                file=sys.stderr,
                flush=True,
            )
    return [
        SettingResult(
            setting=s.name,
            prompt_tokens=prompt_tokens,
            prompt_tokens_per_s=round(prompt_tokens / statistics.median(prompt_s[s.name]), 1),
            generation_tokens_per_s=round(statistics.median(gen_tps[s.name]), 2),
            prompt_seconds=prompt_s[s.name],
        )
        for s in settings
    ]


def markdown(model: str, results: list[SettingResult], rounds: int, load: tuple[float, float]) -> str:
    base = results[0]
    lines = [
        f"Model `{model}`, a fixed prompt of {base.prompt_tokens} tokens read from an empty cache, then "
        f"greedy generation; medians of {rounds} rounds (settings interleaved). Load average "
        f"{load[0]:.1f} before, {load[1]:.1f} after: compare the rows as ratios.",
        "",
        "| setting | prompt tokens/s | vs first row | generation tokens/s | prompt seconds per round |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.setting} | {r.prompt_tokens_per_s} | {r.prompt_tokens_per_s / base.prompt_tokens_per_s:.2f}x "
            f"| {r.generation_tokens_per_s} | {', '.join(f'{s:.2f}' for s in r.prompt_seconds)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from evals.bench_report import DEFAULT_BENCH_DIR, rebuild, save_section
    from retrieval.settings import get_settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="GGUF file name under llm_model_dir, or a path (default: the configured one)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompt-tokens", type=int, default=1000)
    parser.add_argument("--generate", type=int, default=24, help="tokens generated after the prompt")
    parser.add_argument("--setting", action="append", default=[], help="threads=N,threads_batch=N,batch=N (repeatable)")
    parser.add_argument("--out", type=Path, default=DEFAULT_BENCH_DIR)
    args = parser.parse_args(argv)
    settings = get_settings()
    model = settings.llm_model_dir / (args.model or settings.llm_local_model)
    if not model.is_file():
        print(f"error: {model} is missing; run `make llm` (CAIRN_LLM_LOCAL_MODEL selects the model)", file=sys.stderr)
        return 2
    try:
        grid = [parse_setting(s) for s in (args.setting or DEFAULT_GRID)]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    before = os.getloadavg()[0]
    results = bench(model, grid, args.rounds, args.prompt_tokens, args.generate)
    load = (before, os.getloadavg()[0])
    text = markdown(model.name, results, args.rounds, load)
    command = shlex.join(["python", "-m", "evals.bench_llm", *(argv if argv is not None else sys.argv[1:])])
    name = f"llm-{model.stem}"
    data = {"model": model.name, "load_average": load, "results": [asdict(r) for r in results]}
    save_section(args.out, name, f"llama.cpp batch and threads ({model.name})", text, data, command)
    rebuild(args.out)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
