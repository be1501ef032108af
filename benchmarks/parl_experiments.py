"""PARL experiments: reward conditions × seeds from one warm start, evaluated and plotted.

Conditions (all from the same serial-leaning warm start, same budgets, same tasks):

- A  ``perf-only``       r = r_perf
- B  ``annealed``        r = λ1(e)·r_parallel + λ2(e)·r_finish + r_perf, λ1, λ2 annealed to 0
- C  ``never-annealed``  as B, but λ1 stays at its start value
- control ``fixed-width``  APR's forced-width control, evaluated only: a scripted orchestrator
  that always splits the rows across exactly ``--width`` sub-agents (no learned decisions)

Each run is resumable (its folder holds checkpoints); the driver skips finished runs. After
training it evaluates the warm start, every run's final checkpoint and the control on the
test split of a world seed never used in training, greedily, and writes ``results.json``,
``results.md``, every evaluated episode with its answer (``results-episodes.jsonl``) and PNG
plots (mean and spread over seeds against training step); ``training.md`` tabulates each
run's episodes (how often it assigned sub-agents and what it scored, early and late in
training).

Evaluations gather: a new one of the same policy at the same budget on the same tasks
replaces the old row, the others stay, so runs evaluated in different sessions meet in one
``results.json``. Each evaluation (a policy at a budget) is written as soon as it is made: one
stopped halfway keeps the policies it finished. A grid kept under ``experiments/`` is in git
but for its checkpoints (.gitignore): its logs, configs, warm-start digests and results
outlive the machine, a run whose log is complete counts as finished, and one whose
checkpoints went with the machine before it finished starts again from its first step (its
log is cut to match).

    python benchmarks/parl_experiments.py --config configs/parl-nano.yaml --seeds 0,1,2 --out runs/parl-exp
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from parlswarm.files import write_whole
from parlswarm.parl.notes import PLAIN_NOTE_STYLES
from parlswarm.parl.parl_config import ParlConfig
from parlswarm.parl.rewards import RewardConfig, Schedule
from parlswarm.parl.run_folder import latest_checkpoint, logged_steps, read_log
from parlswarm.parl.train import Deadline, _policy_path, deadline_after, episode_facts, load_subagent, train, world_cases
from parlswarm.priority import LOWEST, lower_priority
from parlswarm.types import Budgets

CONDITIONS: dict[str, str] = {"A": "perf-only", "B": "annealed", "C": "never-annealed"}
PLOTTED = {
    "episode/item_f1": "Item-F1",
    "episode/success": "success",
    "episode/subagents_assigned": "sub-agents per episode",
    "episode/parallel_share": "share of parallel steps",
    "episode/critical_steps": "critical steps",
    "episode/total": "reward",
}
EVAL_PLOTTED = {
    "item_f1": "Item-F1 (greedy)",
    "success": "success (greedy)",
    "subagents": "sub-agents per episode (greedy)",
    "critical_steps": "critical steps (greedy)",
}


def condition_reward(base: RewardConfig, condition: str) -> RewardConfig:
    if condition == "A":
        zero = Schedule(kind="constant", start=0.0)
        return base.model_copy(update={"lambda1": zero, "lambda2": zero})
    if condition == "C":
        return base.model_copy(update={"lambda1": Schedule(kind="constant", start=base.lambda1.start)})
    return base


def _train_one(cfg: ParlConfig, deadline: Deadline | None = None) -> None:
    """Train one run, printing a line a step prefixed with its run; a module-level function, so a
    spawned worker process can run it."""
    folder = Path(cfg.out_dir)
    train(cfg, deadline=deadline, on_step=lambda step, s: print(
        f"  {folder.parent.name}/{folder.name} step {step}: reward {s['episode/total']:.3f} "
        f"F1 {s['episode/item_f1']:.3f} sub-agents {s['episode/subagents_assigned']:.2f} "
        f"critical {s['episode/critical_steps']:.1f} ({s['train/seconds']:.0f}s)", flush=True))


def run_training(base: ParlConfig, conditions: list[str], seeds: list[int], out: Path, steps: int | None,
                 jobs: int = 1, deadline: Deadline | None = None) -> dict[str, list[Path]]:
    """Train every (condition, seed) run not finished yet; ``jobs`` > 1 trains that many side by
    side, each in its own process (with the config's ``torch_threads``), for a machine with
    cores or a GPU to spare. A failed run stops the driver after the others have finished.

    ``deadline``: each run starts no step that would end after it
    (:func:`parlswarm.parl.train.step_fits`) and stops with a checkpoint; one after another,
    a run stopped so leaves the runs after it unstarted."""
    runs: dict[str, list[Path]] = {}
    todo: list[ParlConfig] = []
    for condition in conditions:
        for seed in seeds:
            folder = condition_folder(out, condition) / f"seed{seed}"
            update: dict[str, Any] = {"reward": condition_reward(base.reward, condition), "seed": seed, "out_dir": str(folder)}
            if steps is not None:
                update["steps"] = steps
            cfg = base.model_copy(update=update)
            done = latest_checkpoint(folder)
            if done is not None and done.name == f"step-{cfg.steps:05d}":
                print(f"{folder}: finished earlier", flush=True)
            elif logged_steps(folder) >= cfg.steps:
                # A kept record (experiments/ is in git, checkpoints are not): trained; evaluated then, or never.
                print(f"{folder}: finished earlier (its checkpoints are gone, its record stays)", flush=True)
            else:
                print(f"{folder}: training {cfg.steps} steps", flush=True)
                todo.append(cfg)
            runs.setdefault(condition, []).append(folder)
    if jobs <= 1:
        for cfg in todo:
            _train_one(cfg, deadline)
            if (done := logged_steps(Path(cfg.out_dir))) < cfg.steps:
                print(f"{cfg.out_dir}: stopped for the deadline at step {done} of {cfg.steps}; the same command resumes it",
                      flush=True)
                break
        return runs
    # spawn, not fork: each worker starts its own torch (a forked one inherits the parent's threads).
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_train_one, cfg, deadline): cfg.out_dir for cfg in todo}
        failed = []
        for future in as_completed(futures):
            if future.exception() is not None:
                print(f"{futures[future]}: failed: {future.exception()!r}", flush=True)
                failed.append(futures[future])
    if failed:
        raise SystemExit(f"{len(failed)} of {len(todo)} runs failed: {', '.join(failed)} (each resumes from its latest checkpoint)")
    return runs


def eval_budgets(base: ParlConfig, critical_steps: list[int]) -> list[Budgets]:
    """The training budgets with the critical-step limit (and the orchestrator's, which a serial
    episode spends one per critical step) set to each of ``critical_steps``; none given: the
    training budgets alone. A looser budget lets a serial policy finish, so critical steps
    compare at equal Item-F1 rather than both sides sitting at the limit."""
    if not critical_steps:
        return [base.budgets]
    return [base.budgets.model_copy(update={"max_critical_steps": n, "max_orchestrator_steps": n}) for n in critical_steps]


def evaluate_all(base: ParlConfig, runs: dict[str, list[Path]], eval_seed: int, max_tasks: int, width: int,
                 budgets: list[Budgets], out: Path | None = None, baselines: bool = True,
                 split: str = "test", warm_label: str = "warm start") -> list[dict[str, Any]]:
    """Every policy on the cases of ``split`` once per budget; a summary row each. With ``out``,
    each evaluation joins the results there as soon as it is made (:func:`save_evaluation`): one
    that is cut short (an evaluation of a slow policy runs for half an hour on two cores) keeps
    every policy and budget it finished. Without
    ``baselines`` the warm start and the control are left out (evaluated before: greedy, they
    score the same again). ``warm_label`` names the warm start's rows (another warm start than
    the config's gets rows of its own)."""
    from parlswarm.parl.evaluate import evaluate, greedy_policy
    from parlswarm.parl.rollout import expert_prefix
    from parlswarm.world.expert import ExpertModel

    cases, tools = world_cases(eval_seed, split, base.min_rows, base.max_rows)
    cases = cases[:max_tasks]
    warm = _policy_path(base.policy)
    subagent, _ = load_subagent(base, warm)
    prefix = expert_prefix(base.prefix_notes) if base.expert_prefix else None  # evaluated the way it was trained
    rows: list[dict[str, Any]] = []
    where = {"eval_world_seed": eval_seed, "eval_split": split, "tasks": len(cases)}

    def record(label: str, condition: str, seed: int | None, orchestrator: Any, policy: str) -> None:
        for limits in budgets:
            summary, episodes = evaluate(label, orchestrator, subagent, tools, cases, limits, prefix=prefix)
            row = {"condition": condition, "seed": seed, "policy": policy, "critical_budget": limits.max_critical_steps,
                   **summary.model_dump(), **where}
            rows.append(row)
            if out is not None:
                save_evaluation(out, row, [{
                    "label": label, "condition": condition, "seed": seed, "critical_budget": limits.max_critical_steps,
                    **episode_facts(ep), "answer": ep.answer, **where,
                } for ep in episodes])
            print(f"eval {label} (budget {limits.max_critical_steps} critical steps): F1 {summary.item_f1:.3f} "
                  f"success {summary.success:.2f} critical {summary.critical_steps:.1f} sub-agents {summary.subagents:.1f} "
                  f"({summary.policy_tokens} policy tokens, {summary.seconds:.0f}s)", flush=True)

    if baselines:
        record(warm_label, "warm start", None, greedy_policy(warm, base.max_new_tokens), str(warm))
        # reader="find": the control's sub-agents get the find tool whenever the world offers it, as the policy's may.
        control = ExpertModel(rows_per_agent=1, max_agents=width, reader="find")
        record(f"fixed width {width} (scripted orchestrator)", "control", None, control, f"expert:find,agents={width}")
    for condition, folders in runs.items():
        for folder in folders:
            final = latest_checkpoint(folder)
            if final is None:
                print(f"{folder}: no checkpoint to evaluate", flush=True)
                continue
            seed = int(folder.name.removeprefix("seed"))
            record(f"{condition} seed {seed}", condition, seed, greedy_policy(final, base.max_new_tokens), str(final))
    return rows


def save_evaluation(out: Path, row: dict[str, Any], episodes: list[dict[str, Any]]) -> None:
    """One evaluation into the results under ``out``: its row into ``results.json`` (in place of
    an older one of the same, :func:`merge_rows`) and ``results.md``, its episodes into
    ``results-episodes.jsonl`` (in place of the older one's, :func:`merge_episodes`). Each file is written whole or not
    at all (:func:`~parlswarm.files.write_whole`)."""
    results = out / "results.json"
    rows = merge_rows(json.loads(results.read_text(encoding="utf-8")) if results.is_file() else [], [row])
    episodes_file = out / "results-episodes.jsonl"
    write_whole(episodes_file, "".join(line + "\n" for line in merge_episodes(_lines(episodes_file), row, episodes)))
    write_whole(results, json.dumps(rows, indent=2) + "\n")
    write_whole(out / "results.md", markdown(rows))


def merge_episodes(old: list[str], row: dict[str, Any], episodes: list[dict[str, Any]]) -> list[str]:
    """The lines of ``old`` with the episodes of ``row``'s evaluation, if it was made before, in
    place of the older ones (where the first of them stood), else after the rest: evaluating a
    policy again leaves the file's order, as :func:`merge_rows` leaves the rows', so the diff
    shows only what changed."""
    new = [json.dumps(e) for e in episodes]
    merged: list[str] = []
    placed = False
    for line in old:
        if _evaluation(json.loads(line)) != _evaluation(row):
            merged.append(line)
        elif not placed:
            merged += new
            placed = True
    return merged if placed else merged + new


def _evaluation(row: dict[str, Any]) -> tuple[Any, ...]:
    """What a result row (or an evaluated episode) is a figure of: which policy, at which budget,
    on which tasks. A new evaluation of the same replaces the old; others stay. A baseline is
    told apart by its label (another warm start, another control width)."""
    baseline = row["label"] if row["seed"] is None else None
    return (row["condition"], row["seed"], baseline, row.get("critical_budget"), row.get("eval_world_seed"),
            row.get("eval_split", "test"), row.get("tasks"))


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.is_file() else []


def merge_rows(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``old`` with each row ``new`` evaluates again replaced in place, and the rest of ``new``
    after: evaluations made at different times (runs finished in different sessions) gather in
    one results file."""
    fresh = {_evaluation(r): r for r in new}
    merged = [fresh.pop(_evaluation(r), r) for r in old]
    return merged + [r for r in new if _evaluation(r) in fresh]


def _integers(text: str, option: str, minimum: int = 1) -> list[int]:
    """A comma-separated list of whole numbers given on the command line; a bad one stops the run naming ``option``."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"{option} takes whole numbers separated by commas, not {text!r}") from None
    if any(v < minimum for v in values):
        raise SystemExit(f"{option} takes numbers of at least {minimum}, not {text!r}")
    return values


def _logged(runs: dict[str, list[Path]], name: str) -> Iterator[tuple[str, Path, list[dict[str, Any]]]]:
    """(condition, run folder, its lines of ``name``) for every run that wrote any."""
    for condition, folders in runs.items():
        for folder in folders:
            if records := read_log(folder / name):
                yield condition, folder, records


def condition_folder(out: Path, condition: str) -> Path:
    """Where a condition's seeds live under ``out``: ``A-perf-only/``, ``B-annealed/``, …"""
    return out / f"{condition}-{CONDITIONS[condition]}"


def recorded_runs(out: Path, runs: dict[str, list[Path]]) -> dict[str, list[Path]]:
    """This invocation's runs and every other run under ``out`` with a training log, so that
    the plots and ``training.md`` cover the whole grid when conditions and seeds are trained
    in separate invocations, as on two cores they are."""
    found: dict[str, list[Path]] = {}
    for condition in CONDITIONS:
        folders = {p for p in condition_folder(out, condition).glob("seed*") if (p / "metrics.jsonl").is_file()}
        folders |= set(runs.get(condition, []))
        if folders:
            found[condition] = sorted(folders, key=lambda p: (len(p.name), p.name))
    return found


def curves(runs: dict[str, list[Path]]) -> dict[str, dict[str, list[list[float]]]]:
    """condition → metric → one list of values per seed, indexed by step."""
    out: dict[str, dict[str, list[list[float]]]] = {}
    for condition, _, metrics in _logged(runs, "metrics.jsonl"):
        for key in PLOTTED:
            out.setdefault(condition, {}).setdefault(key, []).append([m[key] for m in metrics])
    return out


def training_table(runs: dict[str, list[Path]]) -> str:
    """Per run, from its episodes: how often the policy assigned a sub-agent and what it scored,
    in the first and last third of training, and how many steps had a non-zero gradient
    (a step whose group rewards are all equal has none)."""
    lines = ["| run | steps | episodes | assigned a sub-agent: first → last third | Item-F1: first → last third "
             "| critical steps | steps with a gradient |", "|---|---:|---:|---|---|---:|---:|"]
    for condition, folders in runs.items():
        for folder in folders:
            episodes = read_log(folder / "episodes.jsonl")
            if not episodes:
                continue
            metrics = read_log(folder / "metrics.jsonl")
            steps = max(e["step"] for e in episodes)
            third = max(1, steps // 3)
            first = [e for e in episodes if e["step"] <= third]
            last = [e for e in episodes if e["step"] > steps - third]

            def assigned(es: list[dict[str, Any]]) -> float:
                return statistics.fmean(float(e["subagents_assigned"] > 0) for e in es)

            def f1(es: list[dict[str, Any]]) -> float:
                return statistics.fmean(e["item_f1"] for e in es)

            moved = sum(1 for m in metrics if m["loss/grad_norm"] > 0)
            lines.append(f"| {condition} {CONDITIONS[condition]} {folder.name} | {steps} | {len(episodes)} | "
                         f"{assigned(first):.2f} → {assigned(last):.2f} | {f1(first):.3f} → {f1(last):.3f} | "
                         f"{statistics.fmean(e['critical_steps'] for e in episodes):.1f} | {moved} |")
    return "\n".join(lines) + "\n"


def eval_curves(runs: dict[str, list[Path]]) -> dict[str, dict[str, list[list[float]]]]:
    """condition → field → one list per seed of the run's greedy evaluations (``eval.jsonl``, when
    the config has ``eval_every``), and ``step`` → the steps they were made at."""
    out: dict[str, dict[str, list[list[float]]]] = {}
    for condition, _, evals in _logged(runs, "eval.jsonl"):
        for key in ("step", *EVAL_PLOTTED):
            out.setdefault(condition, {}).setdefault(key, []).append([e[key] for e in evals])
    return out


def plot(data: dict[str, dict[str, list[list[float]]]], out: Path, smooth: int = 3,
         evaluations: dict[str, dict[str, list[list[float]]]] | None = None) -> list[Path]:
    """``parl-curves.png`` from the training steps' sampled episodes, ``parl-eval-curves.png``
    from the runs' greedy evaluations; each only when there is something to draw (an
    evaluation of baselines alone trains nothing)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def draw(panels: dict[str, str], source: dict[str, dict[str, list[list[float]]]], title: str, name: str,
             window: int) -> Path:
        fig, axes = plt.subplots(2, (len(panels) + 1) // 2, figsize=(4.7 * ((len(panels) + 1) // 2), 7.5))
        for ax, (key, panel) in zip(axes.flat, panels.items()):
            for condition, metrics in sorted(source.items()):
                series = [s for s in metrics.get(key, []) if s]
                if not series:
                    continue
                n = min(len(s) for s in series)
                runs = [[statistics.fmean(s[max(0, i - window + 1) : i + 1]) for i in range(n)] for s in series]
                steps = metrics["step"][0][:n] if "step" in metrics else list(range(1, n + 1))
                mean = [statistics.fmean(r[i] for r in runs) for i in range(n)]
                ax.plot(steps, mean, marker="o" if "step" in metrics else None,
                        label=f"{condition} {CONDITIONS[condition]} ({len(runs)} seed{'s' if len(runs) != 1 else ''})")
                ax.fill_between(steps, [min(r[i] for r in runs) for i in range(n)], [max(r[i] for r in runs) for i in range(n)],
                                alpha=0.2)
            ax.set_title(panel)
            ax.set_xlabel("training step")
        axes.flat[0].legend(fontsize=8)
        fig.suptitle(title)
        fig.tight_layout()
        path = out / name
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return path

    paths = []
    if data:
        paths.append(draw(PLOTTED, data, f"PARL training curves (mean over seeds, band = min–max, moving average of {smooth} steps)",
                          "parl-curves.png", smooth))
    if evaluations:
        paths.append(draw(EVAL_PLOTTED, evaluations, "PARL greedy evaluations during training (mean over seeds, band = min–max)",
                          "parl-eval-curves.png", 1))
    return paths


def evaluation_table(runs: dict[str, list[Path]]) -> str:
    """Per run, its greedy evaluations during training: the first (the warm start) and the last,
    and the best by Item-F1, the checkpoint to choose on this split. Empty when none made any."""
    lines = ["| run | evaluations (world, split, tasks) | Item-F1: first → last | success: first → last | "
             "critical steps: first → last | best Item-F1 (step) |", "|---|---|---|---|---|---|"]
    for condition, folder, evals in _logged(runs, "eval.jsonl"):
        first, last = evals[0], evals[-1]
        best = max(evals, key=lambda e: (e["item_f1"], -e["step"]))
        lines.append(f"| {condition} {CONDITIONS[condition]} {folder.name} | {len(evals)} (world {last['world_seed']}, "
                     f"{last['split']}, {last['tasks']}) | {first['item_f1']:.3f} → {last['item_f1']:.3f} | "
                     f"{first['success']:.2f} → {last['success']:.2f} | {first['critical_steps']:.1f} → "
                     f"{last['critical_steps']:.1f} | {best['item_f1']:.3f} ({best['step']}) |")
    return "\n".join(lines) + "\n" if len(lines) > 2 else ""


def _tasks(row: dict[str, Any]) -> str:
    """Which tasks a row scored: how many, of which world's which split (test, in rows from before stop 27)."""
    return f"{row['tasks']} (world {row.get('eval_world_seed')} {row.get('eval_split', 'test')})"


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| orchestrator | critical-step budget | sub-agents run | tasks | Item-F1 | success | critical steps | total steps | sub-agents/episode | parallel share | errors |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r.get('critical_budget')} | {r['subagent']} | {_tasks(r)} | {r['item_f1']:.3f} | {r['success']:.2f} | "
                     f"{r['critical_steps']:.1f} | {r['total_steps']:.1f} | {r['subagents']:.2f} | {r['parallel_share']:.2f} | {r['errors']} |")
    by_condition: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in rows:
        if r["seed"] is not None:
            by_condition.setdefault((r["condition"], _tasks(r), r.get("critical_budget") or 0), []).append(r)
    if by_condition:
        lines += ["", "Mean ± spread over seeds:", "",
                  "| condition | tasks | critical-step budget | seeds | Item-F1 | success | critical steps | sub-agents/episode |",
                  "|---|---|---|---|---|---|---|---|"]

        def spread(rs: list[dict[str, Any]], key: str) -> str:
            values = [r[key] for r in rs]
            return f"{statistics.fmean(values):.3f} ({min(values):.3f}–{max(values):.3f})"

        for (condition, tasks, budget), rs in sorted(by_condition.items()):
            lines.append(f"| {condition} {CONDITIONS[condition]} | {tasks} | {budget} | {len(rs)} | {spread(rs, 'item_f1')} | "
                         f"{spread(rs, 'success')} | {spread(rs, 'critical_steps')} | {spread(rs, 'subagents')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/parl-nano.yaml")
    parser.add_argument("--conditions", default="A,B,C")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=None, help="override the config's steps")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs trained side by side, each in its own process (default 1: one after another); "
                             "they share the cores at equal priority, which on CPU slows each update several times "
                             "(docs/parl.md): for a second run beside one, start another invocation with --nice 19")
    parser.add_argument("--nice", type=int, default=0, metavar="N",
                        help="lower this invocation's CPU priority to nice N (1-19), its session's too: a run that "
                             "takes only the cores another run leaves idle (parlswarm.priority)")
    parser.add_argument("--stop-after", type=float, default=None, metavar="MINUTES",
                        help="start no training step that would end later than MINUTES from now (judged by the run's "
                             "longest step so far) and stop with a checkpoint: for a machine lent for a few hours")
    parser.add_argument("--stop-margin", type=float, default=1.0, metavar="FACTOR",
                        help="with --stop-after: leave FACTOR (at least 1) times the run's longest step for the next "
                             "one; steps vary with their episodes, and 2 leaves fewer ending past the deadline")
    parser.add_argument("--out", default="runs/parl-exp")
    parser.add_argument("--eval-world-seed", type=int, default=77)
    parser.add_argument("--eval-split", default="test", choices=("train", "dev", "test"),
                        help="the split evaluated on (default test; dev to choose among checkpoints without the test tasks)")
    parser.add_argument("--eval-tasks", type=int, default=12)
    parser.add_argument("--width", type=int, default=4, help="sub-agents of the fixed-width control")
    parser.add_argument("--eval-critical-steps", default="",
                        help="critical-step budgets to evaluate at, comma-separated (default: the config's); "
                             "each policy is evaluated once per budget")
    parser.add_argument("--skip-train", action="store_true", help="evaluate and plot what is there")
    parser.add_argument("--skip-eval", action="store_true", help="train (and plot) only")
    parser.add_argument("--no-baselines", action="store_true",
                        help="evaluate the runs only, not the warm start and the control (greedy, they score as before)")
    parser.add_argument("--policy", default=None, help="override the config's warm start")
    parser.add_argument("--lr", type=float, default=None, help="override the config's learning rate")
    parser.add_argument("--prefix-notes", default=None, choices=PLAIN_NOTE_STYLES,
                        help="override the config's prefix_notes (the warm start's data.note_style)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="override the config's sampling temperature (parl_prefix_probe.py finds one)")
    parser.add_argument("--skip-zero-advantage", action="store_const", const=True, default=None,
                        help="leave turns of advantage 0 out of the update: the same weights, less time (a run "
                        "begun with it resumes only with it)")
    args = parser.parse_args()
    if not 0 <= args.nice <= LOWEST:
        raise SystemExit(f"--nice takes a number from 0 to {LOWEST}, not {args.nice}")
    for lowered in lower_priority(args.nice):  # before torch starts its threads, so that they inherit it
        print(f"--nice {args.nice}: {lowered}", flush=True)
    given = (("policy", args.policy), ("lr", args.lr), ("prefix_notes", args.prefix_notes), ("temperature", args.temperature),
             ("skip_zero_advantage", args.skip_zero_advantage))
    overrides = {k: v for k, v in given if v is not None}
    base = ParlConfig.from_yaml(args.config, overrides or None)
    import torch

    torch.set_num_threads(base.torch_threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    seeds = _integers(args.seeds, "--seeds", minimum=0)
    eval_steps = _integers(args.eval_critical_steps, "--eval-critical-steps")  # checked before hours of training
    if args.jobs < 1:
        raise SystemExit(f"--jobs takes a number of at least 1, not {args.jobs}")
    if args.stop_after is not None and args.stop_after <= 0:
        raise SystemExit(f"--stop-after takes a number of minutes above 0, not {args.stop_after}")
    if not args.stop_margin >= 1:
        raise SystemExit(f"--stop-margin takes a factor of at least 1, not {args.stop_margin}")
    if args.skip_train:
        runs = {c: [condition_folder(out, c) / f"seed{s}" for s in seeds] for c in conditions}
    else:
        runs = run_training(base, conditions, seeds, out, args.steps, args.jobs,
                             deadline_after(args.stop_after, args.stop_margin))
    logged = recorded_runs(out, runs)
    plot(curves(logged), out, evaluations=eval_curves(logged))
    training = training_table(logged)
    if evaluations := evaluation_table(logged):
        training += "\nGreedy evaluations during training (the config's eval_every):\n\n" + evaluations
    (out / "training.md").write_text(training, encoding="utf-8")
    print(training)
    if args.skip_eval:
        return
    evaluate_all(base, runs, args.eval_world_seed, args.eval_tasks, args.width, eval_budgets(base, eval_steps),
                 out=out, baselines=not args.no_baselines, split=args.eval_split,
                 warm_label=f"warm start ({args.policy})" if args.policy else "warm start")
    if (out / "results.md").is_file():
        print((out / "results.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
