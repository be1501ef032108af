"""Where an evaluation's answers lose cells: each episode's answer scored again, row by row.

``parl_experiments.py`` keeps every evaluated episode's answer in ``results-episodes.jsonl``.
This scores each answer against its task's gold table (the task's world and split come from
the line) and prints, per episode, the gold rows, the rows answered and matched, the gold
rows missing, the extra rows, and the wrong cells with what was answered and what the world
says. With ``expert`` sub-agents, whose replies are exact, a wrong cell was lost in the
orchestrator's own turns (its merge of the replies, or a row it answered itself).

    python benchmarks/parl_cells.py experiments/smollm2-parl-eval/results-episodes.jsonl [--label LABEL] [--budget N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from parlswarm.parl.rollout import TaskCase
from parlswarm.parl.train import world_cases
from parlswarm.scoring import score_response


def load_cases(episodes: list[dict[str, Any]]) -> dict[tuple[int, str, str], TaskCase]:
    """The task of every episode, by (world seed, split, task id); each world loaded once."""
    cases: dict[tuple[int, str, str], TaskCase] = {}
    for seed, split in sorted({(e["world_seed"], e.get("eval_split", "test")) for e in episodes}):
        for case in world_cases(seed, split, 0, None)[0]:
            cases[(seed, split, case.task.instance_id)] = case
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("episodes", type=Path, help="a results-episodes.jsonl of parl_experiments.py")
    parser.add_argument("--label", default=None, help="only the episodes of this label (e.g. 'B seed 0')")
    parser.add_argument("--budget", type=int, default=None, help="only the episodes at this critical-step budget")
    parser.add_argument("--wrong", type=int, default=3, help="wrong cells printed per episode")
    args = parser.parse_args()

    lines = [json.loads(line) for line in args.episodes.read_text(encoding="utf-8").splitlines() if line.strip()]
    episodes = [e for e in lines if (args.label is None or e["label"] == args.label)
                and (args.budget is None or e["critical_budget"] == args.budget)]
    if not episodes:
        raise SystemExit(f"{args.episodes}: no episodes{f' labelled {args.label!r}' if args.label else ''}"
                         f"{f' at budget {args.budget}' if args.budget else ''} (labels: {sorted({e['label'] for e in lines})})")
    cases = load_cases(episodes)
    width = max(len("label"), *(len(e["label"]) for e in episodes))
    header = f"{'label':<{width}} | {'world':<9} | {'task':<15} |   F1 | gold | answered | matched | missing | extra | wrong cells"
    print(header)
    print("-" * len(header))
    for e in episodes:
        split = e.get("eval_split", "test")
        case = cases[(e["world_seed"], split, e["task"])]
        score = score_response(case.task, case.gold, e["answer"])
        # An answer without a readable table has no rows to compare: say why instead.
        wrong = f"{len(score.wrong_cells)}" if score.error_kind is None else f"- ({score.error_kind})"
        print(f"{e['label']:<{width}} | {e['world_seed']:>3} {split:<5} | {e['task']:<15} | {score.item_f1:.2f} | {score.gold_rows:>4} | "
              f"{score.response_rows:>8} | {score.matched_rows:>7} | {len(score.missing_keys):>7} | {len(score.extra_keys):>5} | {wrong}")
        for cell in score.wrong_cells[: args.wrong]:
            print(f"{'':<{width}}   {'/'.join(cell.key)}, {cell.column}: answered {cell.response!r}, world {cell.gold!r}")


if __name__ == "__main__":
    main()
