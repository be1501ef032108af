"""Which critical-step budget makes wide tasks hard to finish serially? The scripted expert by width.

Runs the scripted expert on training tasks of a world under several critical-step budgets,
serially and with fixed orchestration widths, and prints mean Item-F1 per cell. PARL wants
a budget where serial execution fails and parallel execution succeeds (docs/parl.md).

    python benchmarks/parl_budget_probe.py --reader find --budgets 8,10,12 [--world-seed 11] [--tasks 16]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

from parlswarm.parl.rollout import TaskCase
from parlswarm.scoring import score_response
from parlswarm.swarm import Swarm
from parlswarm.types import Budgets
from parlswarm.world.expert import ExpertModel
from parlswarm.world.factbook import Factbook
from parlswarm.world.tasks import make_tasks
from parlswarm.world.tools import world_tools
from parlswarm.world.world import World


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reader", choices=["pages", "find"], default="find")
    parser.add_argument("--budgets", default="8,10,12", help="critical-step budgets, comma-separated")
    parser.add_argument("--world-seed", type=int, default=11)
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--min-rows", type=int, default=5)
    parser.add_argument("--max-rows", type=int, default=8)
    parser.add_argument("--max-subagents", type=int, default=16)
    args = parser.parse_args()
    real = Factbook.load()
    world = World.load(args.world_seed, base=real)
    tools = world_tools(world)
    cases = [TaskCase.from_world(t, args.world_seed) for t in make_tasks("train", world.factbook, real, args.world_seed)]
    cases = [c for c in cases if args.min_rows <= c.rows <= args.max_rows][: args.tasks]
    policies = {
        "serial": (ExpertModel("serial", reader=args.reader), "single"),
        "width 2": (ExpertModel(reader=args.reader, rows_per_agent=1, max_agents=2), "swarm"),
        "width 4": (ExpertModel(reader=args.reader, rows_per_agent=1, max_agents=4), "swarm"),
        "one per place": (ExpertModel(reader=args.reader, rows_per_agent=1), "swarm"),
    }
    sub = ExpertModel(reader=args.reader)
    print(f"{len(cases)} train tasks of {args.min_rows}-{args.max_rows} rows, world seed {args.world_seed}, reader {args.reader}: Item-F1")
    print(f"{'budget':>8}" + "".join(f"{name:>15}" for name in policies))
    for budget in (int(b) for b in args.budgets.split(",")):
        limits = Budgets(
            max_critical_steps=budget, max_orchestrator_steps=budget, max_subagent_steps=budget,
            max_tool_calls=300, max_subagents=args.max_subagents,
        )
        cells = []
        for model, mode in policies.values():
            scores = []
            for case in cases:
                result = asyncio.run(Swarm(model, subagent_model=sub, tools=tools, mode=mode, budgets=limits).run(case.task.query))
                scores.append(score_response(case.task, case.gold, result.answer).item_f1)
            cells.append(statistics.mean(scores))
        print(f"{budget:>8}" + "".join(f"{c:>15.2f}" for c in cells))


if __name__ == "__main__":
    main()
