"""Which orchestrator turns does an SFT recipe actually train? Token lengths by turn index.

SFT leaves out every sample longer than ``data.max_tokens`` (counted, not shown). This
records the expert's traces of one world as the recipe would, encodes every orchestrator
turn with a model's tokenizer and chat format, and prints, per kind (serial, parallel) and
turn index, how many samples there are, their median and maximum length, and how many are
over ``max_tokens`` and over the model's context. In a swarm-mode trace turn 0 searches,
turn 1 opens the region's index, turn 2 creates the sub-agent, turn 3 assigns the sub-tasks
and turn 4 merges their tables.

    python benchmarks/sft_turn_lengths.py --config configs/sft-nano-assign.yaml --model runs/sft-nano-rows-long/final [--world-seed 3] [--conversations N]
"""

from __future__ import annotations

import argparse
import collections
import statistics

from parlswarm.models.local import LocalModel
from parlswarm.parl.sft import encode_turn
from parlswarm.parl.sft_config import SFTConfig
from parlswarm.parl.traces import record_traces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="an SFT recipe (its data section is used)")
    parser.add_argument("--model", required=True, help="a save_pretrained folder whose tokenizer and chat format encode the turns")
    parser.add_argument("--world-seed", type=int, default=3)
    parser.add_argument("--conversations", type=int, default=None, help="encode at most this many of each kind (default: all)")
    args = parser.parse_args()
    cfg = SFTConfig.load(args.config)
    lm = LocalModel.from_pretrained(args.model)
    context = lm.model.config.max_position_embeddings
    lengths: dict[tuple[str, int], list[int]] = collections.defaultdict(list)
    seen: collections.Counter[str] = collections.Counter()
    for conv in record_traces(args.world_seed, cfg.data):
        seen[conv.kind] += 1
        if conv.kind != "subagent" and (args.conversations is None or seen[conv.kind] <= args.conversations):
            for turn in range(conv.turns()):
                lengths[(conv.kind, turn)].append(len(encode_turn(lm, conv, turn)[0]))
    limit = cfg.data.max_tokens
    print(f"{args.config}, world seed {args.world_seed}: max_tokens {limit}, context {context}")
    print(f"| kind | turn | samples | median | max | over {limit} | over {context} |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for (kind, turn), values in sorted(lengths.items()):
        print(f"| {kind} | {turn} | {len(values)} | {int(statistics.median(values))} | {max(values)} | "
              f"{sum(v > limit for v in values)} | {sum(v > context for v in values)} |")


if __name__ == "__main__":
    main()
