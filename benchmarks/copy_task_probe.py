"""How fast does a model learn the SFT copying tasks on their own (no agent turns mixed in)?

Trains a copy of the model on ``parlswarm.parl.copy_task`` copying batches only (``repeat``,
``recall`` or ``both``) and prints the task's token accuracy every ``--every`` steps, so
one can tell a task the architecture cannot learn from one the mixed SFT run did not
give enough steps. Nothing is saved.

    python benchmarks/copy_task_probe.py --model runs/sft-nano-find/final --kind recall --steps 400
    python benchmarks/copy_task_probe.py --model scratch --kind repeat --steps 300   # a fresh nano-small model
    python benchmarks/copy_task_probe.py --model runs/sft-nano-spaces/final --kind repeat --separators 3 --lr 0 --steps 20 --every 20   # as it is
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from parlswarm.models.local import LocalModel
from parlswarm.models.nano import NanoConfig, build_model
from parlswarm.parl.copy_task import CopyTaskConfig, copy_loss, copy_sampler

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="src/parlswarm/weights/nano", help="a save_pretrained folder, or 'scratch'")
    parser.add_argument("--kind", choices=["repeat", "recall", "both", "lists"], default="recall")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--key-pool", type=int, default=24)
    parser.add_argument("--length", type=int, default=40, help="repeat: tokens copied")
    parser.add_argument("--separators", type=int, default=0, help="repeat: every other token one of this many separators")
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = LocalModel.from_pretrained(ROOT / "src/parlswarm/weights/nano" if args.model == "scratch" else args.model)
    model = build_model(NanoConfig.load(ROOT / "configs/nano-small.json"), base.tokenizer, seed=0) if args.model == "scratch" else base.model
    model.train()
    cfg = CopyTaskConfig(
        weight=1.0, kind=args.kind, batch=args.batch, pairs=args.pairs, key_pool=args.key_pool,
        length=args.length, separators=args.separators,
    )
    draw_copy = copy_sampler(base.tokenizer, cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    t0 = time.perf_counter()
    accs: dict[str, list[float]] = {"repeat": [], "recall": [], "lists": []}
    for step in range(args.steps):
        loss, metrics = copy_loss(model, *draw_copy(step, 0))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        accs[cfg.kind_at(step)].append(metrics["copy_acc"])
        if (step + 1) % args.every == 0:
            shown = ", ".join(
                f"{k} accuracy {sum(v[-args.every:]) / len(v[-args.every:]):.3f}" for k, v in accs.items() if v
            )
            print(f"step {step + 1}: {shown} ({time.perf_counter() - t0:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
