"""A PARL run's repeated steps set beside their first runs, or two runs' steps side by side.

A run whose checkpoints went with a machine starts over from its warm start, and the lines it
had logged are kept in ``metrics.dropped.jsonl`` and ``episodes.dropped.jsonl`` beside its logs
(docs/parl.md, "What is where"). Seeded, a step run again should draw the same episodes and
log the same figures; only its times may differ. Given a run folder, this prints each step
that was logged more than once: for each earlier run of it, the metrics (but ``*seconds``,
and how a replayed step ran: :mod:`parlswarm.parl.replay`) and the episode figures that
differ from the current log's, and the times side by side.

With ``--against OTHER``, it sets the run beside another run on the same steps (two reward
conditions of one seed, say, which draw alike until their updates part them): per step, the
episode figures that differ (what happened: task, sub-agents, steps, tool calls, Item-F1…;
not the reward terms, which the conditions weigh differently), the tokens generated and read
a turn, the mean reward and policy loss of each, and whether the two rewards rank each group's
episodes alike (if they do, the group-normalised advantages differ only in size, and the
updates little).

    python benchmarks/parl_repeats.py experiments/parl-smollm2-t08/C-never-annealed/seed0
    python benchmarks/parl_repeats.py experiments/parl-smollm2-t08/C-never-annealed/seed0 \\
        --against experiments/parl-smollm2-t08/A-perf-only/seed0
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from parlswarm.parl.replay import HOW_IT_RAN, REPLAYED
from parlswarm.parl.run_folder import dropped_log, read_log

# What the reward condition weighs: differs between conditions on the same episode.
REWARD_KEYS = frozenset({"lambda1", "lambda2", "lambda_aux", "total"})
# The text of a step's turns, which can part before any episode figure does.
TEXT_KEYS = ("train/completion_tokens", "train/prompt_tokens_mean")

Run = dict[int, list[dict[str, Any]]]  # step → its lines, in the order logged


def episodes_per_step(folder: Path) -> int:
    """How many episode lines a step of the run in ``folder`` writes: tasks a step × group size."""
    path = folder / "config.yaml"
    if not path.is_file():
        raise SystemExit(f"{folder}: no config.yaml; is it a PARL run folder (train parl --out, parl_experiments.py --out)?")
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    return int(config["tasks_per_step"]) * int(config["group_size"])


def split_runs(records: list[dict[str, Any]], per_step: int) -> list[Run]:
    """The runs a dropped log holds, oldest first. Each time a run was cut, its lines from the
    step it went on from were appended, steps ascending; so a new run begins where the step
    goes down, or repeats the last step once that step has all ``per_step`` of its lines."""
    runs: list[Run] = []
    previous: int | None = None
    for record in records:
        step = record["step"]
        if previous is None or step < previous or (step == previous and len(runs[-1][step]) == per_step):
            runs.append({})
        runs[-1].setdefault(step, []).append(record)
        previous = step
    return runs


def as_run(records: list[dict[str, Any]]) -> Run:
    run: Run = {}
    for record in records:
        run.setdefault(record["step"], []).append(record)
    return run


def load_runs(folder: Path) -> tuple[list[Run], list[Run]]:
    """The folder's metrics and episodes, one :data:`Run` per time the run was started, the
    current log last."""
    if not (folder / "metrics.jsonl").is_file():
        raise SystemExit(f"{folder}: no metrics.jsonl; is it a PARL run folder?")
    per_step = episodes_per_step(folder)
    metrics = split_runs(read_log(dropped_log(folder / "metrics.jsonl")), 1)
    episodes = split_runs(read_log(dropped_log(folder / "episodes.jsonl")), per_step)
    if [sorted(r) for r in metrics] != [sorted(r) for r in episodes]:
        raise SystemExit(f"{folder}: metrics.dropped.jsonl and episodes.dropped.jsonl do not hold the same steps "
                         f"({[sorted(r) for r in metrics]} against {[sorted(r) for r in episodes]})")
    metrics.append(as_run(read_log(folder / "metrics.jsonl")))
    episodes.append(as_run(read_log(folder / "episodes.jsonl")))
    return metrics, episodes


def differing(a: dict[str, Any], b: dict[str, Any], ignore: frozenset[str] = frozenset()) -> list[str]:
    """The keys whose values differ between two lines (either missing counts as differing), but
    times and ``ignore``."""
    return sorted(k for k in a.keys() | b.keys() if "seconds" not in k and k not in ignore and a.get(k) != b.get(k))


def episode_differences(a: list[dict[str, Any]], b: list[dict[str, Any]], ignore: frozenset[str] = frozenset()) -> list[str]:
    """``episode N: keys`` for each of a step's episodes that differs; the count if they do not pair up."""
    if len(a) != len(b):
        return [f"{len(a)} episodes against {len(b)}"]
    return [f"episode {i + 1}: {', '.join(keys)}" for i, (x, y) in enumerate(zip(a, b))
            if (keys := differing(x, y, ignore | {"step"}))]


def side_by_side(a: dict[str, Any], b: dict[str, Any], key: str, fmt: str) -> str:
    """``a[key] / b[key]``, each formatted with ``fmt`` (nan where a line lacks the key)."""
    return f"{format(a.get(key, float('nan')), fmt)} / {format(b.get(key, float('nan')), fmt)}"


def repeat_rows(folder: Path) -> list[str]:
    """One line per earlier run of each step that the current log holds again."""
    metrics, episodes = load_runs(folder)
    current_m, current_e = metrics[-1], episodes[-1]
    rows = []
    for step in sorted(current_m):
        for number, (run_m, run_e) in enumerate(zip(metrics[:-1], episodes[:-1]), start=1):
            if step not in run_m:
                continue
            then, now = run_m[step][0], current_m[step][0]
            keys = differing(then, now, HOW_IT_RAN)
            eps = episode_differences(run_e.get(step, []), current_e.get(step, []))
            verdict = "the same" if not keys and not eps else "; ".join(filter(None, [", ".join(keys), *eps]))
            if now.get(REPLAYED):
                verdict += " (replayed: its policy turns read back from the log, not decoded)"
            rows.append(f"{step:>4} | {f'run {number} of {len(metrics)}':<11} | {then.get('train/seconds', 0):>12,.0f} | "
                        f"{now.get('train/seconds', 0):>11,.0f} | {verdict}")
    return rows


def ranked_alike(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> str:
    """``alike`` if the two runs' rewards order every pair of episodes of one task (a GRPO
    group) the same way, ties included, else ``otherwise``; ``-`` if the episodes do not pair up (or
    there are none)."""
    if not a or len(a) != len(b) or any(x["task"] != y["task"] for x, y in zip(a, b)):
        return "-"

    def sign(run: list[dict[str, Any]], i: int, j: int) -> int:
        return (run[i]["total"] > run[j]["total"]) - (run[i]["total"] < run[j]["total"])

    pairs = [(i, j) for i in range(len(a)) for j in range(i + 1, len(a)) if a[i]["task"] == a[j]["task"]]
    return "alike" if all(sign(a, i, j) == sign(b, i, j) for i, j in pairs) else "otherwise"


def against_rows(folder: Path, other: Path) -> list[str]:
    """One line per step both runs' current logs hold."""
    (m_a, e_a), (m_b, e_b) = ((m[-1], e[-1]) for m, e in (load_runs(folder), load_runs(other)))
    rows = []
    for step in sorted(m_a.keys() & m_b.keys()):
        a, b = m_a[step][0], m_b[step][0]
        eps = episode_differences(e_a.get(step, []), e_b.get(step, []), REWARD_KEYS)
        text = [k.removeprefix("train/") for k in TEXT_KEYS if a.get(k) != b.get(k)]
        verdict = "; ".join(eps) if eps else ("the same episodes, other text: " + ", ".join(text) if text else "the same episodes")
        task = e_a[step][0]["task"] if e_a.get(step) else "?"
        rows.append(f"{step:>4} | {task:<16} | {side_by_side(a, b, 'train/completion_tokens', ',.0f'):>15} | "
                    f"{side_by_side(a, b, 'train/prompt_tokens_mean', ',.0f'):>13} | "
                    f"{side_by_side(a, b, 'episode/total', '.3f'):>13} | {side_by_side(a, b, 'loss/policy', '.3f'):>15} | "
                    f"{ranked_alike(e_a.get(step, []), e_b.get(step, [])):<9} | {verdict}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a PARL run folder (config.yaml, metrics.jsonl, episodes.jsonl)")
    parser.add_argument("--against", type=Path, default=None, help="another run folder to set beside it, step by step")
    args = parser.parse_args()

    if args.against is None:
        header = "step | earlier run | seconds then | seconds now | what differs from the current log (times aside)"
        rows = repeat_rows(args.run)
        empty = f"{args.run}: no step was logged twice (no *.dropped.jsonl lines for the steps it holds)"
    else:
        header = (f"step | task             | tokens written  | read a turn   | mean reward   | policy loss     | "
                  f"rewards   | episodes ({args.run} / {args.against}; reward terms aside)")
        rows = against_rows(args.run, args.against)
        empty = f"{args.run} and {args.against} hold no step in common"
    if not rows:
        raise SystemExit(empty)
    print(header)
    print("-" * len(header))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
