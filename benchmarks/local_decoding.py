"""LocalModel's decoding options on a real evaluation: the same greedy run two ways, side by side.

``--compare reuse``: without prefix reuse (``prefix_cache_bytes=0``, every prompt prefilled
whole) against with it. An orchestrator's next prompt repeats its last one up to what happened
since: prefilling those tokens again is work thrown away (on the two CPU cores less than it
seemed: decoding is most of a turn's cost, docs/local-model.md "Measured").

``--compare continuous``: lockstep batches (a batch decodes until its longest row ends, and
requests that arrive meanwhile wait for the next batch) against continuous batching (a request
joins the rows decoding at the next token, a row goes back as soon as it ends). Both reuse
prefixes.

Each side runs one PARL evaluation (the policy of a PARL config, greedy, on a world's tasks,
under the config's budgets, prefix model and sub-agents) on the same weights; with
``--sampled``, what a PARL step's rollouts decode instead: ``group_size`` episodes of each task
at once, sampled at the config's temperature and seed (both sides start the same sampling
round, and a seeded request's draws do not depend on its batch, so both sides draw the same
tokens up to rounding). It prints the
wall-clock, the policy's prompt tokens and how many came from the prefix cache, the tokens
generated, the batches formed (admissions, for continuous batching) and whether the two sides
played the same episodes: either option changes the order of floating-point sums, so a near-tie
of greedy decoding may go the other way (the line says how many episodes differ).

    python benchmarks/local_decoding.py [--compare reuse|continuous] [--config configs/parl-smollm2-t08.yaml]
        [--policy SPEC] [--world-seed 78] [--split dev] [--tasks 2] [--sampled] [--repeats 1] [--threads N]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import torch

from parlswarm.models.local import LocalModel
from parlswarm.models.local_settings import Sampling
from parlswarm.parl.evaluate import evaluate
from parlswarm.parl.parl_config import ParlConfig
from parlswarm.parl.rollout import Episode, expert_prefix, rollout_groups
from parlswarm.parl.train import _policy_path, load_subagent, world_cases

ROOT = Path(__file__).resolve().parents[1]


def played(episodes: list[Episode]) -> list[tuple[str, float, int, int]]:
    """What an episode did, as far as the comparison goes: answer, score, steps, sub-agents."""
    return [(e.answer, e.stats.item_f1, e.stats.critical_steps, e.stats.subagents_assigned) for e in episodes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", choices=("reuse", "continuous"), default="reuse")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "parl-smollm2-t08.yaml")
    parser.add_argument("--policy", default=None, help="the model to evaluate (default: the config's warm start)")
    parser.add_argument("--world-seed", type=int, default=78)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--sampled", action="store_true",
                        help="decode a PARL step's rollouts (group_size sampled episodes a task) instead of a greedy evaluation")
    parser.add_argument("--repeats", type=int, default=1, help="runs per side, interleaved; the best of each side is compared")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (torch's default when omitted)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    config = ParlConfig.from_yaml(args.config)
    path = _policy_path(args.policy or config.policy)
    cases, tools = world_cases(args.world_seed, args.split, config.min_rows, config.max_rows)
    cases = cases[: args.tasks]
    subagent, _ = load_subagent(config, path)
    prefix = expert_prefix(config.prefix_notes) if config.expert_prefix else None
    temperature = config.temperature if args.sampled else 0.0
    sampling = Sampling(temperature=temperature, max_new_tokens=config.max_new_tokens, seed=config.seed)
    base = LocalModel.from_pretrained(path, sampling=sampling)
    def variant(**options: Any) -> LocalModel:
        return LocalModel(base.model, base.tokenizer, name=base.name, settings=base.settings, **options)

    sides = ({"no reuse": variant(prefix_cache_bytes=0), "reuse": base} if args.compare == "reuse"
             else {"lockstep": base, "continuous": variant(continuous=True)})
    decoded = f"{config.group_size} sampled episodes a task at {temperature}" if args.sampled else "greedy"
    print(f"policy: {path} ({config.subagent} sub-agents{', expert prefix' if prefix else ''}); world {args.world_seed} "
          f"{args.split}, {len(cases)} tasks of {config.min_rows}-{config.max_rows} rows, {decoded}; "
          f"budget {config.budgets.max_critical_steps} critical steps; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'run':>3} | {'side':>10} | {'seconds':>7} | {'prompt tokens':>13} | {'reused':>6} | {'generated':>9} | {'batches':>7} | Item-F1")
    print(f"{'-' * 3}-+-{'-' * 10}-+-{'-' * 7}-+-{'-' * 13}-+-{'-' * 6}-+-{'-' * 9}-+-{'-' * 7}-+--------")
    best = {side: float("inf") for side in sides}
    episodes: dict[str, list[Episode]] = {}
    for run in range(1, args.repeats + 1):
        for side, lm in sides.items():  # interleaved: the machine is shared, the best run of a side is its least disturbed
            lm.prefix_cache.clear()
            lm.start_sampling_round(0)
            before = (lm.stats.prompt_tokens, lm.stats.reused_tokens, lm.stats.generated_tokens, lm.stats.batches)
            t0 = time.perf_counter()
            if args.sampled:
                episodes[side] = asyncio.run(rollout_groups(lm, subagent, {args.world_seed: tools}, cases, config.group_size,
                                                            config.budgets, prefix=prefix))
                item_f1 = sum(e.stats.item_f1 for e in episodes[side]) / len(episodes[side])
            else:
                summary, episodes[side] = evaluate(side, lm, subagent, tools, cases, config.budgets, prefix=prefix)
                item_f1 = summary.item_f1
            seconds = time.perf_counter() - t0
            best[side] = min(best[side], seconds)
            prompt, reused, generated, batches = (now - then for now, then in zip(
                (lm.stats.prompt_tokens, lm.stats.reused_tokens, lm.stats.generated_tokens, lm.stats.batches), before))
            print(f"{run:>3} | {side:>10} | {seconds:>7.1f} | {prompt:>13} | {reused:>6} | {generated:>9} | {batches:>7} | "
                  f"{item_f1:.3f}", flush=True)
    first, second = sides
    same = sum(a == b for a, b in zip(played(episodes[first]), played(episodes[second])))
    print(f"speed-up (best {first} / best {second}): {best[first] / best[second]:.2f}x; "
          f"episodes played the same both ways: {same} of {len(episodes[first])}")


if __name__ == "__main__":
    main()
