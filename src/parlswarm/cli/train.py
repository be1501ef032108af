"""``parlswarm train``: training commands (``sft`` here; ``parl`` joins ``train_app`` the same way)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from parlswarm.cli import app
from parlswarm.cli.common import console, console_err, user_errors

train_app = typer.Typer(help="Train models: the supervised warm start (sft) and PARL.", no_args_is_help=True)
app.add_typer(train_app, name="train")


def _progress(total: int, initial: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="sft", unit="step", dynamic_ncols=True)


@train_app.command("sft")
def sft(
    config: Annotated[Path, typer.Option("--config", "-c", help="An SFT config (configs/sft-nano.yaml).")],
    out_dir: Annotated[Path | None, typer.Option(help="Run folder; the config's out_dir by default.")] = None,
    steps: Annotated[int | None, typer.Option(help="Override train.steps.")] = None,
) -> None:
    """Supervised warm start on expert traces; resumes from OUT_DIR/checkpoint when present."""
    with user_errors():
        from parlswarm.parl.sft import SFTRun
        from parlswarm.parl.sft_config import SFTConfig

        # Recording traces and building the tokenizer take minutes: say how it goes.
        logging.getLogger("parlswarm.parl.sft").setLevel(logging.INFO)

        cfg = SFTConfig.load(config)
        if out_dir is not None:
            cfg.out_dir = out_dir
        if steps is not None:
            cfg.train.steps = steps
        resuming = (Path(cfg.out_dir) / "checkpoint" / "trainer_state.pt").exists()
        console_err.print(
            f"[dim]{'resuming' if resuming else 'starting'} SFT in {cfg.out_dir}: expert traces from world seeds "
            f"{cfg.data.world_seeds}, {cfg.train.steps} steps[/dim]",
            highlight=False,
        )
        manifest = SFTRun(cfg, progress=_progress).run()
    console.print(f"final model: {Path(cfg.out_dir) / 'final'}", highlight=False)
    console.print(json.dumps({"data": manifest["data"], "dev": manifest["dev"]}, indent=2), highlight=False)


@train_app.command("ship")
def ship(
    source: Annotated[Path, typer.Argument(help="A saved model: the final/ folder of a training run.")],
    name: Annotated[str, typer.Option("--name", help="Ship as --model builtin:NAME ('nano' is --model builtin).")],
    evaluation: Annotated[
        list[Path] | None,
        typer.Option(
            "--evaluation",
            help="A benchmarks/nano_eval.py --out report or a benchmarks/parl_experiments.py results.json of SOURCE; repeatable.",
        ),
    ] = None,
    command: Annotated[str | None, typer.Option(help="The evaluation command, recorded in the manifest.")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Ship over a model already shipped under NAME.")] = False,
    into: Annotated[
        Path | None,
        typer.Option(
            "--into",
            help="Ship into DIR/NAME instead of parlswarm's weights/: a preview to evaluate (a lossy fold) before it ships.",
        ),
    ] = None,
    fold: Annotated[
        bool, typer.Option("--fold", help="An adapter on another adapter (a PARL checkpoint): ship the chain as one adapter.")
    ] = False,
    rank: Annotated[
        int | None, typer.Option("--rank", min=1, help="With --fold: keep the best approximation of this rank (default: exact).")
    ] = None,
    keep_last: Annotated[
        bool,
        typer.Option(
            "--keep-last",
            help="With --fold --rank: keep SOURCE's own adapter whole and approximate only the adapters it stacks on.",
        ),
    ] = False,
    int8: Annotated[
        bool, typer.Option("--int8", help="Store an adapter's weights as 8-bit rows and their scales (half of float16's bytes).")
    ] = False,
    float16: Annotated[
        bool,
        typer.Option("--float16", help="Store a whole model's weights as float16 (half the bytes); an adapter ships so anyway."),
    ] = False,
) -> None:
    """Commit a trained model with parlswarm: copy it (an adapter as float16) into weights/NAME with its manifest."""
    with user_errors():
        from parlswarm.models.ship import ship as ship_model

        if int8 and float16:
            raise ValueError("--int8 and --float16 are two ways to store the weights: pass one")
        dest = ship_model(source, name, evaluations=evaluation, command=command, root=into, replace=replace, fold=fold,
                           rank=rank, keep_last=keep_last, dtype="int8" if int8 else "float16" if float16 else None)
    size = sum(p.stat().st_size for p in dest.iterdir()) / 2**20
    spec = f"--model hf:{dest}" if into is not None else ("--model builtin" if name == "nano" else f"--model builtin:{name}")
    console.print(f"shipped {source} to {dest} ({size:.1f} MiB): {spec}", highlight=False)
    folded = json.loads((dest / "manifest.json").read_text(encoding="utf-8")).get("folded")
    if folded:
        console.print(
            f"folded {len(folded['adapters'])} adapters into one of rank {folded['rank']}: "
            f"{'exact' if folded['exact'] else 'approximate'}, {folded['kept']:.1%} of the update kept "
            f"({folded['worst_layer_kept']:.1%} in the worst layer); {folded['last_kept']:.1%} of {source}'s own",
            highlight=False,
        )
