"""Replay a PARL run's logged steps in a scratch copy and say whether they come out as logged.

A run started over reads the steps it had logged back from ``generations.jsonl`` instead of
decoding them (docs/parl.md, "What is where"; ``parlswarm.parl.replay``). This checks that on
a real run: it copies the run's logs and one checkpoint into a scratch folder, as a machine
that lost the later checkpoints would hold them, goes through the next ``--steps`` steps
there (they are replayed), and sets each beside the step as logged: replayed or not, the
figures that differ (times and how it ran aside), whether its episodes and policy turns are
the same, and the step's seconds as logged and as replayed. It exits 1 unless every step was
replayed and came out the same. The run folder itself is only read.

``--from-step 0`` goes on from the warm start, with no checkpoint, as a folder whose
checkpoints are all gone does: with ``--steps`` the run's length it checks the whole run, and
the scratch folder ends with the run's last checkpoint rebuilt from its logs.

``--tolerance T`` takes figures within ``T`` of the logged ones (relative, or absolute below 1)
as the same, so that the replay goes on where another CPU rounds the update differently; the
table gives each step's largest difference either way. The rebuilt weights are then near the
first run's, not equal: evaluate them before taking them for it (docs/parl.md, forty-fourth look).

    python benchmarks/parl_replay_check.py experiments/parl-smollm2-t08/C-never-annealed/seed0 --from-step 4
    python benchmarks/parl_replay_check.py experiments/parl-smollm2-t08/C-never-annealed/seed0 --from-step 0 --steps 12
    python benchmarks/parl_replay_check.py experiments/parl-smollm2-t08/C-never-annealed/seed0 --from-step 0 --steps 12 --tolerance 1e-4
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

from parlswarm.parl.parl_config import ParlConfig
from parlswarm.parl.replay import GENERATIONS, REPLAYED, largest_difference, replay_differences
from parlswarm.parl.run_folder import LOGS, dropped_log, read_log
from parlswarm.parl.train import train


def scratch_copy(run: Path, step: int, scratch: Path) -> None:
    """The run's logs, settings and its step-``step`` checkpoint (none for step 0: the warm
    start), and nothing later, in ``scratch``."""
    checkpoint = run / "checkpoints" / f"step-{step:05d}"
    if step > 0 and not checkpoint.is_dir():
        kept = sorted(p.name for p in (run / "checkpoints").glob("step-*")) if (run / "checkpoints").is_dir() else []
        raise SystemExit(f"{run}: no checkpoint of step {step} (checkpoints here: {kept or 'none'}); "
                         "--from-step 0 goes on from the warm start")
    scratch.mkdir(parents=True, exist_ok=True)
    for name in ("config.yaml", "git_commit", *LOGS, *(dropped_log(run / n).name for n in LOGS)):
        if (run / name).is_file():
            shutil.copy(run / name, scratch / name)
    if (run / "warm_start").is_dir():
        shutil.copytree(run / "warm_start", scratch / "warm_start")
    if step > 0:
        shutil.copytree(checkpoint, scratch / "checkpoints" / checkpoint.name)
        (scratch / "checkpoints" / "latest").write_text(checkpoint.name + "\n", encoding="utf-8")


def by_step(lines: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for line in lines:
        out.setdefault(line["step"], []).append(line)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a PARL run folder with checkpoints/ and generations.jsonl")
    parser.add_argument("--from-step", type=int, required=True,
                        help="the checkpoint to go on from (0: the warm start, no checkpoint)")
    parser.add_argument("--steps", type=int, default=1, help="how many logged steps to replay after it")
    parser.add_argument("--scratch", type=Path, default=None, help="the scratch folder (default: a new temporary one)")
    parser.add_argument("--tolerance", type=float, default=0.0,
                        help="figures this close to the logged ones count as the same (default 0: exact)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if args.from_step < 0 or args.steps < 1:
        parser.error(f"--from-step must be 0 or more and --steps 1 or more (got {args.from_step} and {args.steps})")
    if not 0.0 <= args.tolerance < 1.0:
        parser.error(f"--tolerance must be at least 0 and below 1 (got {args.tolerance})")
    wanted = list(range(args.from_step + 1, args.from_step + 1 + args.steps))
    logged_turns = by_step(read_log(args.run / GENERATIONS))
    missing = [s for s in wanted if s not in logged_turns]
    if missing:
        raise SystemExit(f"{args.run}: {GENERATIONS} holds no policy turns for step(s) {missing} "
                         f"(it holds {sorted(logged_turns) or 'none'}); nothing to replay there")
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="parl-replay-check-"))
    scratch_copy(args.run, args.from_step, scratch)
    config = ParlConfig.model_validate(yaml.safe_load((scratch / "config.yaml").read_text(encoding="utf-8")))
    train(config.model_copy(update={"out_dir": str(scratch)}), until_step=wanted[-1], replay_tolerance=args.tolerance)

    first = {name: by_step(read_log(args.run / name)) for name in ("metrics.jsonl", "episodes.jsonl", GENERATIONS)}
    again = {name: by_step(read_log(scratch / name)) for name in first}
    header = ("step | replayed | figures that differ (times, how it ran aside) | largest difference | episodes | "
              "policy turns | seconds logged | replayed")
    print(header)
    print("-" * len(header))
    exact = True
    for step in wanted:
        then, now = first["metrics.jsonl"][step][0], again["metrics.jsonl"].get(step, [{}])[0]
        differs = replay_differences(then, now, args.tolerance)
        same_episodes = first["episodes.jsonl"][step] == again["episodes.jsonl"].get(step)
        same_turns = first[GENERATIONS][step] == again[GENERATIONS].get(step)
        replayed = bool(now.get(REPLAYED))
        exact = exact and replayed and not differs and same_episodes and same_turns
        print(f"{step:>4} | {'yes' if replayed else 'NO':<8} | {', '.join(differs) or 'none':<46} | "
              f"{largest_difference(then, now):<18.1e} | "
              f"{'same' if same_episodes else 'DIFFER':<8} | {'same' if same_turns else 'DIFFER':<12} | "
              f"{then.get('train/seconds', 0):>14,.0f} | {now.get('train/seconds', 0):>8,.0f}")
    print(f"scratch folder: {scratch}")
    sys.exit(0 if exact else 1)


if __name__ == "__main__":
    main()
