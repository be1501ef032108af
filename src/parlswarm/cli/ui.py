"""``parlswarm ui2code`` and ``parlswarm bench-ui``: coding with vision from the command line."""

from __future__ import annotations

import asyncio
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from parlswarm.cli import app
from parlswarm.cli.common import UserError, console, console_err, user_errors
from parlswarm.models import ModelOptions, load_model
from parlswarm.models.base import Model
from parlswarm.types import Budgets

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Multimodal model (see docs/models.md); scripted-ui2code:FILE replays a script.")]
SubModelOpt = Annotated[str | None, typer.Option(help="Sub-agent model; the orchestrator's by default.")]
BaseUrlOpt = Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint (vLLM, SGLang, Ollama ...).")]
ThinkingOpt = Annotated[bool | None, typer.Option("--thinking/--no-thinking", help="Reasoning on/off where supported.")]
RoundsOpt = Annotated[int, typer.Option(help="Rounds (assemble, render, compare) at most.")]
PatienceOpt = Annotated[int, typer.Option(help="Rounds without a gain before the loop stops.")]
ToolImagesOpt = Annotated[str, typer.Option(help="Tool-result images as 'user' content (works everywhere) or 'inline'.")]


def _vision():  # type: ignore[no-untyped-def]
    """Import the vision package (optional extra) with a clear message when it is missing."""
    try:
        from parlswarm.vision import bench, scripted, ui2code  # noqa: F401  (scripted registers its model form)
    except ImportError as exc:
        raise UserError(f"ui2code needs the vision extra: pip install 'parlswarm[vision]' ({exc})") from None
    return ui2code, bench


def _config(max_rounds: int, patience: int, min_gain: float, tool_images: str):  # type: ignore[no-untyped-def]
    ui2code, _ = _vision()
    if tool_images not in ("user", "inline"):
        raise ValueError(f"--tool-images must be user or inline, not {tool_images!r}")
    return ui2code.UI2CodeConfig(max_rounds=max_rounds, patience=patience, min_gain=min_gain, tool_images=tool_images)


def _budgets(timeout: float | None, max_tokens: int | None) -> Budgets:
    from parlswarm.vision.ui2code import default_budgets

    return default_budgets().model_copy(update={"max_seconds": timeout, "max_tokens": max_tokens})


@app.command()
def ui2code(
    image: Annotated[Path | None, typer.Argument(help="Screenshot of the page to rebuild (PNG, JPEG, WebP).")] = None,
    model: ModelOpt = ...,  # type: ignore[assignment]
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for index.html, screenshots, scores and trace.")] = ...,  # type: ignore[assignment]
    video: Annotated[Path | None, typer.Option(help="Screen recording (GIF/APNG/WebP; MP4 with an imageio video plugin): key frames go to the orchestrator.")] = None,
    subagent_model: SubModelOpt = None,
    base_url: BaseUrlOpt = None,
    thinking: ThinkingOpt = None,
    max_rounds: RoundsOpt = 4,
    patience: PatienceOpt = 1,
    min_gain: Annotated[float, typer.Option(help="Overall-score gain that counts as improvement.")] = 0.002,
    tool_images: ToolImagesOpt = "user",
    reference_html: Annotated[Path | None, typer.Option(help="The page's true HTML, if known: the result is also scored with Design2Code's metrics.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Wall-clock seconds of the run.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Tokens of the run.")] = None,
) -> None:
    """Rebuild the page in IMAGE as one self-contained index.html, with sub-agents per region."""
    with user_errors():
        ui2code_mod, _ = _vision()
        if image is None and video is None:
            raise ValueError("give a screenshot (IMAGE), a recording (--video), or both")
        config = _config(max_rounds, patience, min_gain, tool_images)
        options = ModelOptions(base_url=base_url, thinking=thinking)
        orchestrator = load_model(model, options)
        sub = load_model(subagent_model, options) if subagent_model else None
        html = reference_html.read_text(encoding="utf-8") if reference_html else None
        result = asyncio.run(
            ui2code_mod.run_ui2code(
                image,
                model=orchestrator,
                subagent_model=sub,
                video=video,
                out_dir=out,
                config=config,
                budgets=_budgets(timeout, max_tokens),
                reference_html=html,
            )
        )
    table = Table("round", "overall", "block", "position", "color", "ssim", "kept", title=f"ui2code · {orchestrator.name}")
    for r in result.rounds:
        s = r.scores
        table.add_row(str(r.round), f"{r.overall:.3f}", f"{s.block_match:.3f}", f"{s.position:.3f}", f"{s.color:.3f}",
                      f"{s.ssim:.3f}", "✓" if r.round == result.best_round else "")
    if result.rounds:
        console.print(table)
    if result.final_dom is not None:
        console.print(f"Design2Code-style score against the reference HTML: {result.final_dom.line()}", highlight=False)
    if result.stop_reason:
        console.print(f"stopped: {result.stop_reason}", highlight=False)
    written = ", ".join(sorted(result.files.values()))
    console.print(f"wrote {written} to {out}", highlight=False)
    if not result.ok:
        console_err.print(f"[red]error:[/red] {result.message}", highlight=False)
        raise typer.Exit(1)


@app.command("bench-ui")
def bench_ui(
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model; '{page}' in it is replaced by each page id (e.g. scripted-ui2code:benchmarks/ui2code/scripted/{page}.json).")] = None,
    pages: Annotated[str | None, typer.Option(help="Page ids or kinds, comma-separated; all 20 when omitted.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for each page's run and bench-ui.json.")] = Path("bench-ui-out"),
    bench_set: Annotated[Path, typer.Option("--set", help="The benchmark set (manifest.json, pages/).")] = Path("benchmarks/ui2code"),
    subagent_model: SubModelOpt = None,
    base_url: BaseUrlOpt = None,
    thinking: ThinkingOpt = None,
    max_rounds: RoundsOpt = 4,
    patience: PatienceOpt = 1,
    tool_images: ToolImagesOpt = "user",
    metric_check: Annotated[bool, typer.Option("--metric-check", help="No model: score each reference against itself, degraded variants and a blank page.")] = False,
) -> None:
    """Score a model on the offline ui2code benchmark (results table + bench-ui.json)."""
    with user_errors():
        _, bench = _vision()
        root, all_pages = bench.load_set(bench_set)
        chosen = bench.select(all_pages, pages)
        if metric_check:
            _metric_check(bench, root, chosen, out)
            return
        if not model:
            raise ValueError("--model is required (or use --metric-check)")
        config = _config(max_rounds, patience, 0.002, tool_images)
        options = ModelOptions(base_url=base_url, thinking=thinking)

        model_for = _model_getter(model, options)
        if chosen:
            model_for(chosen[0].id)  # a bad --model fails before any page runs
        rows = asyncio.run(
            bench.run_bench(
                root,
                chosen,
                model_for,
                out,
                subagent_model_for=_model_getter(subagent_model, options) if subagent_model else None,
                config=config,
                on_row=lambda r: console_err.print(f"[dim]{r.page}: {r.message}[/dim]", highlight=False),
            )
        )
    table = Table(Column("page", no_wrap=True), "rounds", "D2C round 1", "D2C kept", "block", "text", "position", "color",
                  "ssim", "visual 1", "visual kept", "sub-agents", "seconds", title=f"bench-ui · {model}")
    for r in rows:
        d = r.dom
        cells = [f"{v:.3f}" for v in (d.overall, d.block_match, d.text or 0.0, d.position, d.color, d.ssim)] if d else ["—"] * 6
        table.add_row(r.page, str(r.rounds), _f(r.first_dom.overall if r.first_dom else None), *cells, _f(r.first_round),
                      _f(r.best_visual), str(r.subagents), f"{r.seconds:.1f}")
    scored = [r.dom.overall for r in rows if r.dom is not None]
    if rows:
        table.add_row("mean", f"{statistics.mean(r.rounds for r in rows):.2f}",
                      _f(_mean([r.first_dom.overall if r.first_dom else None for r in rows])), _f(_mean(scored)),
                      *[""] * 5, _f(_mean([r.first_round for r in rows])), _f(_mean([r.best_visual for r in rows])),
                      f"{statistics.mean(r.subagents for r in rows):.1f}", f"{sum(r.seconds for r in rows):.0f} total")
    _wide(table, 150)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"model": model, "pages": [r.model_dump(mode="json") for r in rows],
               "mean_dom_overall": _mean(scored),
               "mean_first_dom_overall": _mean([r.first_dom.overall if r.first_dom else None for r in rows])}
    (out / "bench-ui.json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    console.print(f"wrote {out / 'bench-ui.json'}", highlight=False)


def _model_getter(spec: str, options: ModelOptions) -> Callable[[str], Model]:
    """Page id → model, with '{page}' in ``spec`` replaced by the id; each distinct model loaded once."""
    cache: dict[str, Model] = {}

    def get(page_id: str) -> Model:
        key = spec.replace("{page}", page_id)
        if key not in cache:
            cache[key] = load_model(key, options)
        return cache[key]

    return get


def _metric_check(bench, root: Path, chosen: list, out: Path) -> None:  # type: ignore[no-untyped-def]
    from parlswarm.vision.degrade import LEVELS

    rows = asyncio.run(bench.metric_check(root, chosen, on_row=lambda r: console_err.print(f"[dim]{r.page}[/dim]")))
    names = ["self", *LEVELS, "blank"]
    table = Table(Column("page", no_wrap=True), *names, "ordered", title="metric check: overall score of each reference against …")
    for r in rows:
        table.add_row(r.page, *[f"{r.scores[n]:.3f}" for n in names], "✓" if r.ordered else "✗")
    table.add_row("mean", *[f"{statistics.mean(r.scores[n] for r in rows):.3f}" for n in names],
                  f"{sum(r.ordered for r in rows)}/{len(rows)}")
    _wide(table, 100)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metric-check.json").write_text(json.dumps([r.model_dump() for r in rows], indent=1) + "\n", encoding="utf-8")
    console.print(f"wrote {out / 'metric-check.json'}", highlight=False)


def _wide(table: Table, width: int) -> None:
    """Print a table at least ``width`` columns wide, even when stdout is a pipe (80 columns by default)."""
    Console(width=max(console.width, width), soft_wrap=True).print(table)


def _f(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _mean(values: list[float | None] | list[float]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.mean(present) if present else None
