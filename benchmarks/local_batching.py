"""Batched decoding of LocalModel: tokens/s with N concurrent sub-agents, batched vs one by one.

N sub-agents each ask the model for one turn at the same moment (as the sub-agents of one
spawning step do). The same LocalModel weights answer them twice: with the micro-batcher
(one left-padded batch with a KV cache) and with ``max_batch_size=1`` (each request decoded
alone, in turn). Every reply is exactly ``--new-tokens`` tokens long (stop tokens are
ignored) so both sides do the same work. Printed side by side, from one run.

    python benchmarks/local_batching.py [--model builtin|hf:PATH] [--counts 1,4,16,64] [--new-tokens 48] [--repeats 3] [--threads N]

Without ``--model``, the built-in nano model is used when its weights are present, otherwise
a freshly initialised model of ``configs/nano-small.json`` (speed does not depend on the weights).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import torch

from parlswarm.models import load_model
from parlswarm.models.local import LocalModel
from parlswarm.models.local_settings import LocalSettings, Sampling
from parlswarm.models.local_specs import BUILTIN_DIR
from parlswarm.models.nano import NanoConfig, build_model, parameter_count, train_tokenizer
from parlswarm.types import SystemMessage, UserMessage

ROOT = Path(__file__).resolve().parents[1]
COUNTRIES = ["Chad", "France", "Peru", "Japan", "Kenya", "Chile", "Nepal", "Spain", "Ghana", "Laos", "Oman", "Fiji"]


def fresh_model(config_path: Path) -> LocalModel:
    corpus = [f"{c}: capital, population 1,234,567 (2024 est.), area 12,345 sq km." for c in COUNTRIES] * 40
    tokenizer = train_tokenizer(corpus, vocab_size=NanoConfig.load(config_path).vocab_size)
    model = build_model(NanoConfig.load(config_path), tokenizer)
    return LocalModel(model, tokenizer, name=f"fresh {config_path.name}")


def prompt(i: int) -> list:
    country = COUNTRIES[i % len(COUNTRIES)]
    return [
        SystemMessage(content="You are a sub-agent. Look up what you are asked with your tools and reply with the values only."),
        UserMessage(content=f"Find the capital, population and area of {country} (row {i}). Reply as 'field: value' lines."),
    ]


async def measure(lm: LocalModel, n: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    replies = await asyncio.gather(*(lm.complete(prompt(i), []) for i in range(n)))
    seconds = time.perf_counter() - t0
    return seconds, sum(r.usage.completion_tokens for r in replies)


def with_batching(base: LocalModel, max_batch_size: int, new_tokens: int) -> LocalModel:
    lm = LocalModel(
        base.model,
        base.tokenizer,
        name=base.name,
        settings=LocalSettings(tool_format=base.settings.tool_format, sampling=Sampling(max_new_tokens=new_tokens)),
        max_batch_size=max_batch_size,
        prefix_cache_bytes=0,  # repeated prompts would skip their prefill: this measures batching alone
    )
    lm.stop_ids = set()  # fixed-length replies: equal work on both sides
    return lm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a --model form (builtin, hf:PATH, hf-gguf:FILE)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "nano-small.json")
    parser.add_argument("--counts", default="1,4,16,64")
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs per cell")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (torch's default when omitted)")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model:
        base = load_model(args.model)
        assert isinstance(base, LocalModel), "choose a local model form"
    elif (BUILTIN_DIR / "config.json").is_file():
        base = load_model("builtin")  # type: ignore[assignment]
    else:
        base = fresh_model(args.config)
    counts = [int(c) for c in args.counts.split(",")]
    print(
        f"model: {base.name} ({parameter_count(base.model) / 1e6:.1f} M parameters), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {args.new_tokens} new tokens per reply"
    )
    batched = with_batching(base, max(counts), args.new_tokens)
    alone = with_batching(base, 1, args.new_tokens)
    asyncio.run(measure(batched, 2))  # warm-up
    print(f"best of {args.repeats} runs per cell")
    print(f"{'sub-agents':>10} | {'one by one tok/s':>16} | {'batched tok/s':>13} | {'speed-up':>8} | batches")
    print(f"{'-' * 10}-+-{'-' * 16}-+-{'-' * 13}-+-{'-' * 8}-+--------")
    for n in counts:
        # Best of --repeats, the two sides interleaved: the machine is shared, and the
        # fastest run is the one least disturbed by other processes.
        t_alone = t_batch = float("inf")
        for _ in range(args.repeats):
            before = batched.stats.batches
            seconds, tokens = asyncio.run(measure(alone, n))
            assert tokens == n * args.new_tokens
            t_alone = min(t_alone, seconds)
            seconds, tokens = asyncio.run(measure(batched, n))
            assert tokens == n * args.new_tokens
            t_batch = min(t_batch, seconds)
            batches = batched.stats.batches - before
        tokens = n * args.new_tokens
        ratio = t_alone / t_batch
        print(f"{n:>10} | {tokens / t_alone:>16.0f} | {tokens / t_batch:>13.0f} | {ratio:>7.1f}x | {batches}")


if __name__ == "__main__":
    main()
