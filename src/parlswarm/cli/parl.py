"""``parlswarm train parl``: PARL training of the orchestrator (joins the ``train`` group)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from parlswarm.cli.common import console, console_err, user_errors
from parlswarm.cli.train import train_app


@train_app.command("parl")
def parl(
    config: Annotated[Path, typer.Option("--config", "-c", help="A PARL config (configs/parl-nano.yaml).")],
    out_dir: Annotated[str | None, typer.Option(help="Run folder; the config's out_dir by default.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the seed (one run per seed).")] = None,
    steps: Annotated[int | None, typer.Option(help="Override the number of steps.")] = None,
    stop_after: Annotated[float | None, typer.Option(
        min=0.0, metavar="MINUTES",
        help="Start no step that would end later than MINUTES from now (judged by the run's longest step so far) and "
             "stop with a checkpoint; the same command resumes.")] = None,
    stop_margin: Annotated[float, typer.Option(
        min=1.0, metavar="FACTOR",
        help="With --stop-after: leave FACTOR times the run's longest step for the next one (steps vary with their "
             "episodes: 2 leaves fewer ending past the deadline, docs/parl.md 'The trainer').")] = 1.0,
    replay_tolerance: Annotated[float, typer.Option(
        min=0.0, metavar="T",
        help="A run started over replays its logged steps while their figures come out as logged; T lets it go on "
             "through differences that small (relative, absolute below 1): another CPU rounds the update otherwise "
             "(docs/parl.md, forty-fourth look).")] = 0.0,
    nice: Annotated[int, typer.Option(
        min=0, max=19, metavar="N",
        help="Lower the run's CPU priority (and its session's) to nice N: a run beside another takes only the cores "
             "that one leaves idle (docs/parl.md, 'The trainer').")] = 0,
) -> None:
    """GRPO on the orchestrator with frozen sub-agents; resumes from OUT_DIR's latest checkpoint."""
    overrides: dict[str, Any] = {k: v for k, v in {"out_dir": out_dir, "seed": seed, "steps": steps}.items() if v is not None}
    with user_errors():
        from parlswarm.priority import lower_priority

        for lowered in lower_priority(nice):  # before torch starts its threads, so that they inherit it
            console_err.print(f"[dim]--nice {nice}: {lowered}[/dim]", highlight=False)
        from tqdm import tqdm

        from parlswarm.parl.parl_config import ParlConfig
        from parlswarm.parl.run_folder import latest_checkpoint, logged_steps
        from parlswarm.parl.train import deadline_after, train

        cfg = ParlConfig.from_yaml(config, overrides)
        done = latest_checkpoint(Path(cfg.out_dir))
        console_err.print(
            f"[dim]{'resuming' if done else 'starting'} PARL in {cfg.out_dir}: {cfg.steps} steps × "
            f"{cfg.tasks_per_step} tasks × {cfg.group_size} episodes, reward form '{cfg.reward.form}'[/dim]",
            highlight=False,
        )
        bar = tqdm(total=cfg.steps, desc="parl", unit="step", dynamic_ncols=True)

        def on_step(step: int, scalars: dict[str, float]) -> None:
            bar.n = step
            bar.set_postfix(reward=f"{scalars['episode/total']:.3f}", f1=f"{scalars['episode/item_f1']:.2f}",
                            subagents=f"{scalars['episode/subagents_assigned']:.1f}",
                            crit=f"{scalars['episode/critical_steps']:.1f}")
            bar.refresh()

        out = train(cfg, on_step=on_step, deadline=deadline_after(stop_after, stop_margin), replay_tolerance=replay_tolerance)
        bar.close()
        done = logged_steps(out)
    if done < cfg.steps:
        console.print(f"PARL run: {out} stopped at step {done} of {cfg.steps} (--stop-after); the same command resumes it",
                      highlight=False)
        return
    console.print(f"PARL run: {out} (metrics.jsonl, episodes.jsonl, checkpoints/)", highlight=False)
