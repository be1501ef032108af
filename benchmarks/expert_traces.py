"""The expert's traces that the probes of benchmarks/ score a model against: one world's
conversations under an SFT recipe (row_probe.py, verdict_probe.py, nano_turn_probe.py).

Not a benchmark itself: the probes import it from their own folder.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from parlswarm.models.local import LocalModel
from parlswarm.parl.sft_config import SFTConfig
from parlswarm.parl.traces import Conversation, record_traces


def add_trace_arguments(parser: argparse.ArgumentParser, config: str, split: str = "drawn") -> None:
    """``--config`` (the recipe), ``--world-seed``, ``--split`` and ``--seed`` (the draw of states)."""
    parser.add_argument("--config", type=Path, default=Path(config), help="the SFT recipe whose traces to use")
    parser.add_argument("--world-seed", type=int, default=900, help="the world the states come from (default: the dev world)")
    parser.add_argument(
        "--split", default=split, help=f"the tasks of that world: drawn (every task drawn), or a split (default: {split})"
    )
    parser.add_argument("--seed", type=int, default=0, help="the draw of states")


def expert_traces(args: argparse.Namespace, refuse: Callable[[SFTConfig], str | None] = lambda cfg: None) -> list[Conversation]:
    """The expert's conversations of ``args.world_seed`` under ``args.config``'s data section;
    a recipe that ``refuse`` answers with a reason stops the script before the traces are drawn."""
    cfg = SFTConfig.load(args.config)
    reason = refuse(cfg)
    if reason is not None:
        raise SystemExit(f"{args.config}: {reason}")
    return record_traces(args.world_seed, cfg.data.model_copy(update={"split": args.split}))


def probed_models(folders: Sequence[str]) -> Iterator[tuple[str, LocalModel]]:
    """Each ``save_pretrained`` folder as a model in eval mode, loaded one at a time."""
    for folder in folders:
        lm = LocalModel.from_pretrained(folder)
        lm.model.eval()
        yield folder, lm
