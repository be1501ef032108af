"""Peak memory and time of one GRPO update on long orchestrator turns, three ways side by side.

An orchestrator turn late in a swarm episode carries the task, the expert's search and index,
its own earlier turns and every sub-agent's message: thousands of prompt tokens before a
completion of a few hundred. One GRPO minibatch scores several such turns. Ways compared,
each in a fresh process (peak resident memory is a high-water mark):

- ``batched``: the rows padded into one forward with logits for every position, one backward
  (``parlswarm.parl.train.update`` up to stop 23, written out here)
- ``rows``: ``update`` as it is now: each row alone, logits from its completion on only
  (``token_logprobs(wanted=...)``), one row's graph at a time with gradients accumulated
- ``rows+ckpt``: as ``rows``, with gradient checkpointing (``ParlConfig.gradient_checkpointing``)

Each scores the minibatch without gradient (the old log-probabilities), then takes the clipped
loss, its backward and an optimiser step, on a new LoRA adapter as in
``configs/parl-smollm2.yaml``. Random token ids stand in for the text (cost
depends on lengths only). ``load`` is the process with the model loaded and nothing run.

    python benchmarks/grpo_memory.py --model hf-gguf:smollm2 --rows 4 --prompt 3000 --completion 400
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

WAYS = ("load", "batched", "rows", "rows+ckpt")


def one(way: str, model_spec: str, rows: int, prompt: int, completion: int, threads: int) -> dict[str, float]:
    import torch

    from parlswarm.models.adapter import LoraSettings, add_adapter, trainable
    from parlswarm.models.local import load_local
    from parlswarm.parl.grpo import Sample, padded_loss
    from parlswarm.parl.parl_config import ParlConfig
    from parlswarm.parl.train import checkpoint_activations, update

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    local = load_local(model_spec)
    model = add_adapter(local.model, LoraSettings(r=16, alpha=32))
    vocab = model.get_input_embeddings().weight.shape[0]
    if way == "rows+ckpt":
        checkpoint_activations(model)
    # Prompts of different lengths, as the turns of one minibatch are: the padding is real.
    samples = [
        Sample(torch.randint(0, vocab, (prompt - 200 * i,)).tolist(), torch.randint(0, vocab, (completion,)).tolist(), [], 1.0 - i)
        for i in range(rows)
    ]
    t0 = time.perf_counter()
    model.train()
    optimizer = torch.optim.AdamW(trainable(model), lr=1e-4)
    if way == "batched":
        out = padded_loss(model, samples, local.pad_id)
        out.loss.backward()
        optimizer.step()
    elif way != "load":
        update(model, None, optimizer, samples, local.pad_id, ParlConfig(minibatch=len(samples), ppo_epochs=1))
    seconds = time.perf_counter() - t0
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    return {"peak_gib": round(peak_gib, 2), "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="hf-gguf:smollm2", help="a local model spec (parlswarm.models.local)")
    parser.add_argument("--rows", type=int, default=4, help="turns in the minibatch (ParlConfig.minibatch)")
    parser.add_argument("--prompt", type=int, default=3000, help="prompt tokens of the longest row; each next row 200 fewer")
    parser.add_argument("--completion", type=int, default=400, help="completion tokens of every row")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ways", default=",".join(WAYS), help=f"comma-separated, of {', '.join(WAYS)}")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process: run one way, print JSON
    args = parser.parse_args()
    if args.prompt - 200 * (args.rows - 1) < 1:
        parser.error(f"--prompt {args.prompt} is too short for {args.rows} rows (each next row is 200 tokens shorter)")
    if args.one:
        print(json.dumps(one(args.one, args.model, args.rows, args.prompt, args.completion, args.threads)))
        return
    ways = [w.strip() for w in args.ways.split(",") if w.strip()]
    unknown = [w for w in ways if w not in WAYS]
    if unknown:
        parser.error(f"unknown --ways {unknown}; known: {', '.join(WAYS)}")
    print(f"{args.model}: {args.rows} rows, prompts {args.prompt}..{args.prompt - 200 * (args.rows - 1)} tokens, "
          f"completions {args.completion}, {args.threads} threads")
    results: dict[str, dict[str, float] | str] = {}
    for way in ways:
        cmd = [sys.executable, __file__, "--one", way, "--model", args.model, "--rows", str(args.rows),
               "--prompt", str(args.prompt), "--completion", str(args.completion), "--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            # A way that runs out of memory is killed (-9): that is a result, not a crash of the benchmark.
            results[way] = f"failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'no message'}"
        else:
            results[way] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"  {way:10s} {results[way]}", flush=True)
    base = results.get("load")
    print("\n| way | peak memory (GiB) | above load | seconds | vs batched (memory above load) |")
    print("|---|---:|---:|---:|---:|")
    ref = results.get("batched")
    for way in ways:
        r = results[way]
        if isinstance(r, str):
            print(f"| {way} | {r} | | | |")
            continue
        above = r["peak_gib"] - base["peak_gib"] if isinstance(base, dict) else float("nan")
        ratio = ""
        if isinstance(ref, dict) and isinstance(base, dict) and way not in ("load", "batched") and above > 0:
            ratio = f"{(ref['peak_gib'] - base['peak_gib']) / above:.1f}x less"
        print(f"| {way} | {r['peak_gib']:.2f} | {above:.2f} | {r['seconds']:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
