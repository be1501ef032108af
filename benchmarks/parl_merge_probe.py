"""The merge turn alone: a policy's greedy answer at the scripted expert's merge state.

The scripted expert orchestrates each task (one sub-agent created, the places assigned in
shares of ``--rows``, short sub-tasks, the notes of the warm start's style) with the
config's frozen sub-agents. At the state where every sub-agent's table has come back, the
policy writes the final answer instead of the expert. Both answers are scored against the
gold table (WideSearch scoring): the expert's merge should score what its sub-agents found,
and the gap to the policy's is what the merge turn alone costs. Stop 15 found the merge to
be the wall between the fixed-width control (Item-F1 0.79) and every PARL policy (≤ 0.11);
this measures it without the turns before it (docs/parl.md).

    python benchmarks/parl_merge_probe.py --policy runs/sft-nano-parl-explore/final \\
        [--config configs/parl-nano-prefix.yaml] [--world-seed 77] [--tasks 12] [--rows 2] [--show 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from pathlib import Path

import torch

from parlswarm.models.local import LocalModel
from parlswarm.models.local_settings import Sampling
from parlswarm.parl.notes import NotingExpert
from parlswarm.parl.parl_config import ParlConfig
from parlswarm.parl.rollout import TaskCase
from parlswarm.parl.traces import RecordingModel
from parlswarm.parl.train import load_subagent
from parlswarm.scoring import score_response
from parlswarm.swarm import Swarm
from parlswarm.types import Budgets, ToolMessage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", action="append", required=True, help="a save_pretrained folder (repeatable)")
    parser.add_argument("--config", default="configs/parl-nano-prefix.yaml", help="sub-agents, note style, row range")
    parser.add_argument("--world-seed", type=int, default=77, help="default: the PARL evaluation world")
    parser.add_argument("--split", default="test")
    parser.add_argument("--tasks", type=int, default=12)
    parser.add_argument("--rows", type=int, default=2, help="places per sub-agent in the expert's assignment")
    parser.add_argument("--max-new-tokens", type=int, default=768)
    parser.add_argument("--show", type=int, default=2, help="print this many wrong merges per policy")
    args = parser.parse_args()

    from parlswarm.world.expert import ExpertModel
    from parlswarm.world.factbook import Factbook
    from parlswarm.world.tasks import make_tasks
    from parlswarm.world.tools import world_tools
    from parlswarm.world.world import World

    torch.set_num_threads(2)
    cfg = ParlConfig.from_yaml(args.config)
    real = Factbook.load()
    world = World.load(args.world_seed, base=real)
    tools = world_tools(world)
    cases = [TaskCase.from_world(t, args.world_seed) for t in make_tasks(args.split, world.factbook, real, args.world_seed)]
    cases = [c for c in cases if c.rows >= cfg.min_rows and (cfg.max_rows is None or c.rows <= cfg.max_rows)][: args.tasks]
    subagent, _ = load_subagent(cfg, Path(args.policy[0]))
    budgets = Budgets(max_orchestrator_steps=40, max_subagent_steps=40, max_tool_calls=1000)

    # The expert's merge states, one per task.
    states = []
    for case in cases:
        expert = ExpertModel("auto", rows_per_agent=args.rows, reader="find", subtask="short")
        recorder = RecordingModel(NotingExpert(expert, cfg.prefix_notes))
        swarm = Swarm(recorder, subagent_model=subagent, tools=tools, budgets=budgets, mode="swarm")
        result = asyncio.run(swarm.run(case.task.query))
        messages, specs = next((m, s) for m, s in recorder.conversations() if any(t.name == "assign_task" for t in s))
        assert isinstance(messages[-2], ToolMessage), "the expert's last turn follows the sub-agents' tables"
        states.append((case, messages[:-1], specs, score_response(case.task, case.gold, result.answer).item_f1))
    expert_f1 = statistics.fmean(f for _, _, _, f in states)
    print(f"{len(states)} tasks of {cfg.min_rows}-{cfg.max_rows} rows, world seed {args.world_seed} ({args.split}); "
          f"the expert's own merge: Item-F1 {expert_f1:.3f}")

    for path in args.policy:
        policy = LocalModel.from_pretrained(path, sampling=Sampling(temperature=0.0, max_new_tokens=args.max_new_tokens))

        async def merge_all(p: LocalModel = policy) -> list[object]:
            return await asyncio.gather(*(p.complete(m, s) for _, m, s, _ in states), return_exceptions=True)

        f1s: list[float] = []
        exact = shown = 0
        for (case, _, _, expert), out in zip(states, asyncio.run(merge_all())):
            if isinstance(out, BaseException):
                print(f"  {case.task.instance_id}: not decoded: {out}")
                f1s.append(0.0)
                continue
            answer = out.message.content or ""  # type: ignore[attr-defined]
            got = score_response(case.task, case.gold, answer).item_f1
            f1s.append(got)
            exact += got >= expert
            if got < expert and shown < args.show:
                shown += 1
                print(f"  {case.task.instance_id} ({case.rows} rows): expert {expert:.2f}, policy {got:.2f}; the policy wrote:")
                print("    " + answer[-600:].replace("\n", "\n    "))
        print(f"{path}: merge Item-F1 {statistics.fmean(f1s):.3f} (expert {expert_f1:.3f}); "
              f"as good as the expert's at {exact} of {len(f1s)} states")


if __name__ == "__main__":
    main()
