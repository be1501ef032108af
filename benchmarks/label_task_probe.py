"""Is the label task's choice learnable on its own (no agent turns mixed in)?

Trains a copy of the model on ``parlswarm.parl.label_task`` batches only and prints, every
``--every`` steps, the accuracy on held-out draws of each cell's first token (where the line is
chosen: the one the column's label names, among lines of the same form) and of the cell's other
tokens (the copy). Run it before a round that mixes the task in: stop 69's tenth round learnt the
copy and not the choice, and on its own, from the sixth round's weights, the choice stayed at
chance for 2,075 steps (one column, two lines; docs/local-model.md, "Stop 69"). Nothing is saved.

    python benchmarks/label_task_probe.py --model runs/sft-nano-verified-6/final --columns 1 --lines 2 --steps 400
    python benchmarks/label_task_probe.py --model runs/sft-nano-verified-10/final --steps 0   # as it is
    python benchmarks/label_task_probe.py --model runs/sft-nano-verified-6/final --form restated --steps 300 --every 100

With ``--form restated`` each cell is written after its line's label (``label: value``), so the choice
is a recall by the label just written; stop 69 measured it learnt (0.28 -> 0.94 in 300 steps) where
the row form was not (0.25 -> 0.30).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from parlswarm.models.local import LocalModel
from parlswarm.parl.copy_task import copy_loss
from parlswarm.parl.label_task import LabelTaskConfig, label_sampler

HELD_OUT_SEED = 7919  # the draws scored: never a training seed (training draws seed 0)


def split_accuracy(model: Any, ids: torch.Tensor, target: torch.Tensor) -> tuple[int, int, int, int]:
    """Right and total of the trained tokens that start a cell (the previous token untrained) and of the others."""
    with torch.no_grad():
        said = model(ids).logits.argmax(-1)
    right = said[:, :-1] == ids[:, 1:]
    trained = target[:, 1:]
    first = trained & ~target[:, :-1]
    rest = trained & target[:, :-1]
    return int(right[first].sum()), int(first.sum()), int(right[rest].sum()), int(rest.sum())


def held_out(model: Any, draw: Any, batches: int) -> tuple[float, float]:
    """The choice's and the copy's accuracy over ``batches`` held-out batches."""
    model.eval()
    totals = [0, 0, 0, 0]
    for k in range(batches):
        totals = [a + b for a, b in zip(totals, split_accuracy(model, *draw(k, HELD_OUT_SEED)))]
    model.train()
    return totals[0] / max(1, totals[1]), totals[2] / max(1, totals[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="src/parlswarm/weights/nano", help="a save_pretrained folder")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("--lines", type=int, default=3)
    parser.add_argument("--filler", type=int, default=4)
    parser.add_argument("--form", choices=["row", "restated"], default="row", help="the turn: the row, or label: value lines")
    parser.add_argument("--held-out", type=int, default=8, help="held-out batches scored each time")
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    lm = LocalModel.from_pretrained(args.model)
    model = lm.model
    cfg = LabelTaskConfig(
        weight=1.0, batch=args.batch, columns=args.columns, lines=args.lines, filler=args.filler, form=args.form
    )
    draw = label_sampler(lm.tokenizer, cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    t0 = time.perf_counter()
    for step in range(args.steps + 1):
        if step % args.every == 0 or step == args.steps:
            choice, copy = held_out(model, draw, args.held_out)
            print(
                f"step {step}: choice accuracy {choice:.3f}, copy accuracy {copy:.3f} ({time.perf_counter() - t0:.0f}s)",
                flush=True,
            )
        if step == args.steps:
            break
        loss, _ = copy_loss(model, *draw(step, 0), name="label")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()


if __name__ == "__main__":
    main()
