"""Does PARL get a learning signal? Free-running episodes from the decision point, per policy.

Each episode runs as in ``parlswarm train parl`` with ``expert_prefix``: the scripted expert
plays the orchestrator until the region's places are known, then the policy plays to the end,
sampled at the config's temperature (or ``--temperature``), with the config's frozen
sub-agents and critical-step budget. Tasks come from the config's training worlds and row
range; each is run ``--group`` times, as one GRPO group.

Printed per policy: what the policy's first turn did (tool names), how many episodes created
and assigned a sub-agent and how many of those finished, Item-F1, the reward of condition (B)
and (A) at the start of training (e = 0), and the share of groups whose rewards differ — a
group whose episodes all score the same has zero advantage and gives GRPO nothing to follow.

    python benchmarks/parl_prefix_probe.py --policy runs/sft-nano-rows/final [--policy OTHER] \\
        [--config configs/parl-nano-find.yaml] [--tasks 6] [--group 4] [--temperature 0.3] [--show 2]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import statistics
from pathlib import Path
from typing import Any

import torch

from parlswarm.models.local import LocalModel
from parlswarm.models.local_settings import Sampling
from parlswarm.parl.notes import PLAIN_NOTE_STYLES
from parlswarm.parl.parl_config import ParlConfig
from parlswarm.parl.rewards import Schedule, reward
from parlswarm.parl.rollout import Episode, expert_prefix, rollout_groups
from parlswarm.parl.train import load_subagent, load_task_pool
from parlswarm.trace.events import AgentStarted, ToolFinished, ToolStarted


def policy_calls(ep: Episode) -> list[ToolStarted]:
    """The orchestrator's tool calls from the turns the policy played."""
    root = next(e.agent_id for e in ep.trace.events if isinstance(e, AgentStarted) and e.parent_id is None)
    return [e for e in ep.trace.events if isinstance(e, ToolStarted) and e.agent_id == root and e.step >= ep.prefix_turns]


# ToolFinished.error kinds that mean the call itself was malformed, not that the tool failed.
MALFORMED = {"bad_json", "bad_arguments", "unknown_tool"}


def malformed_calls(ep: Episode) -> tuple[int, int]:
    """(malformed, all) tool calls of the policy's own turns: how far sampling garbles its turns."""
    root = next(e.agent_id for e in ep.trace.events if isinstance(e, AgentStarted) and e.parent_id is None)
    done = [e for e in ep.trace.events if isinstance(e, ToolFinished) and e.agent_id == root and e.step >= ep.prefix_turns]
    return sum(e.error in MALFORMED for e in done), len(done)


def call_label(call: ToolStarted) -> str:
    """The tool's name, marked when its arguments are not a JSON object.

    Such a call reaches the tool as its raw block text, which starts with the call's own
    name: printed bare it looks like a call nested in itself (docs/parl.md, stop 14).
    """
    try:
        readable = isinstance(json.loads(call.arguments), dict)
    except ValueError:
        readable = False
    name = " ".join(call.tool.split())  # a name read from raw text may hold a line break
    return name if readable else f"{name} (unreadable, raw text)"


def probe(path: str, config: ParlConfig, episodes_of: Any, show: int) -> dict[str, Any]:
    """Sample the episodes of one policy at ``config.temperature`` and sum them up."""
    policy = LocalModel.from_pretrained(
        path, sampling=Sampling(temperature=config.temperature, max_new_tokens=config.max_new_tokens, seed=config.seed)
    )
    episodes: list[Episode] = episodes_of(policy)
    perf_only = config.reward.model_copy(update={"lambda1": Schedule(kind="constant", start=0.0),
                                                  "lambda2": Schedule(kind="constant", start=0.0)})
    first_turn: collections.Counter[str] = collections.Counter()
    for ep in episodes:
        calls = policy_calls(ep)
        first = sorted({call_label(c) for c in calls if c.step == ep.prefix_turns})
        first_turn["+".join(first) or "(no tool call: answered)"] += 1
    rewards_b = [reward(ep.stats, config.reward, 0.0, rows=ep.case.rows).total for ep in episodes]
    rewards_a = [reward(ep.stats, perf_only, 0.0, rows=ep.case.rows).total for ep in episodes]
    groups: dict[int, list[int]] = collections.defaultdict(list)
    for i, ep in enumerate(episodes):
        groups[ep.group].append(i)

    def spread(rewards: list[float]) -> float:
        return statistics.fmean(float(len({round(rewards[i], 6) for i in idx}) > 1) for idx in groups.values())

    for ep in episodes[:show]:
        print(f"--- {path} · T {config.temperature} · {ep.case.task.instance_id} ({ep.case.rows} rows), "
              f"after {ep.prefix_turns} expert turns:")
        for c in policy_calls(ep)[:4]:
            print(f"    {call_label(c)} {c.arguments[:200]}")
        print(f"    answer: {ep.answer[:240]!r}")
    bad, calls = (sum(n) for n in zip(*(malformed_calls(ep) for ep in episodes), strict=True)) if episodes else (0, 0)
    return {
        "policy": path,
        "temperature": config.temperature,
        "malformed_calls": f"{bad} of {calls}",
        "episodes": len(episodes),
        "first_turn": dict(first_turn.most_common()),
        "created": sum(ep.stats.subagents_created > 0 for ep in episodes),
        "assigned": sum(ep.stats.subagents_assigned > 0 for ep in episodes),
        "finished": sum(ep.stats.subagents_finished > 0 for ep in episodes),
        "item_f1": statistics.fmean(ep.score.item_f1 for ep in episodes),
        "reward_b": statistics.fmean(rewards_b),
        "reward_a": statistics.fmean(rewards_a),
        "groups_with_signal_b": spread(rewards_b),
        "groups_with_signal_a": spread(rewards_a),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", action="append", required=True, help="a save_pretrained folder (repeatable)")
    parser.add_argument("--config", default="configs/parl-nano-find.yaml")
    parser.add_argument("--tasks", type=int, default=6)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--temperature", type=float, action="append", default=None,
                        help="override the config's sampling temperature (repeatable: each policy is probed at each)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="override the config's cap on a turn")
    parser.add_argument("--show", type=int, default=2, help="episodes to print per policy")
    parser.add_argument("--notes", default="labelled", choices=PLAIN_NOTE_STYLES,
                        help="the notes the expert prefix writes (the policies' data.note_style)")
    args = parser.parse_args()
    overrides = {"max_new_tokens": args.max_new_tokens}
    config = ParlConfig.from_yaml(args.config, {k: v for k, v in overrides.items() if v is not None})
    temperatures = args.temperature or [config.temperature]
    torch.set_num_threads(config.torch_threads)
    pool, tools = load_task_pool(config)
    cases = [c for seed in config.world_seeds for c in pool[seed]][: args.tasks]
    # With `subagent: same` the frozen sub-agents are the first policy, for every policy probed.
    subagent, _ = load_subagent(config, Path(args.policy[0]))
    prefix = expert_prefix(args.notes)

    def episodes_of(policy: LocalModel) -> list[Episode]:
        return asyncio.run(rollout_groups(policy, subagent, tools, cases, args.group, config.budgets, prefix=prefix))

    print(f"{len(cases)} tasks × {args.group} episodes, temperature {', '.join(map(str, temperatures))}, at most {config.max_new_tokens} "
          f"tokens a turn, sub-agents {config.subagent}, budget {config.budgets.max_critical_steps} critical steps")
    rows = [probe(path, ParlConfig.model_validate(config.model_dump() | {"temperature": t}), episodes_of, args.show)
            for path in args.policy for t in temperatures]
    print()
    print("| policy | temperature | episodes | first policy turn | policy calls malformed | created / assigned / finished "
          "| Item-F1 | reward (B), (A) at e=0 | groups with a reward spread (B), (A) |")
    print("|---|---:|---:|---|---|---|---:|---|---|")
    for r in rows:
        turns = ", ".join(f"{k} {v}" for k, v in r["first_turn"].items())
        print(f"| {r['policy']} | {r['temperature']} | {r['episodes']} | {turns} | {r['malformed_calls']} | "
              f"{r['created']} / {r['assigned']} / {r['finished']} | "
              f"{r['item_f1']:.3f} | {r['reward_b']:.3f}, {r['reward_a']:.3f} | "
              f"{r['groups_with_signal_b']:.2f}, {r['groups_with_signal_a']:.2f} |")


if __name__ == "__main__":
    main()
