"""The offline ui2code benchmark: score a model on the generated reference pages.

The set (``benchmarks/ui2code``, made by its ``generate.py``) holds, per page, the reference
HTML and its screenshot. :func:`run_bench` runs the ui2code loop on each screenshot and
scores the kept page against the reference in ``dom`` mode (Design2Code's metrics + SSIM).
:func:`metric_check` needs no model: it scores each reference against its own screenshot
and against its degraded variants, to show the metric orders them sensibly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image
from pydantic import BaseModel

from parlswarm.models.base import Model
from parlswarm.types import Budgets
from parlswarm.vision.degrade import BLANK_HTML, LEVELS, degrade
from parlswarm.vision.metrics import Page, Scores, render_page, score_html, score_pages
from parlswarm.vision.ui2code import UI2CodeConfig, run_ui2code


class BenchPage(BaseModel):
    id: str
    kind: str
    width: int
    height: int


class BenchRow(BaseModel):
    page: str
    kind: str
    ok: bool
    rounds: int
    first_round: float | None  # visual score of round 1
    best_visual: float | None
    dom: Scores | None  # the kept page, Design2Code metrics + SSIM against the reference HTML
    first_dom: Scores | None  # round 1, the same way
    subagents: int
    seconds: float
    message: str


def load_set(root: str | Path) -> tuple[Path, list[BenchPage]]:
    root = Path(root)
    manifest = root / "manifest.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"benchmark set not found: {manifest} (run benchmarks/ui2code/generate.py or pass --set)")
    pages = [BenchPage.model_validate(p) for p in json.loads(manifest.read_text(encoding="utf-8"))["pages"]]
    return root, pages


def select(pages: Sequence[BenchPage], spec: str | None) -> list[BenchPage]:
    """``"landing,form-02"`` → pages whose kind or id is listed; all pages when empty."""
    if not spec:
        return list(pages)
    wanted = {s.strip() for s in spec.split(",") if s.strip()}
    chosen = [p for p in pages if p.id in wanted or p.kind in wanted]
    unknown = wanted - {p.id for p in pages} - {p.kind for p in pages}
    if unknown:
        raise ValueError(f"unknown page(s) or kind(s): {', '.join(sorted(unknown))}")
    return chosen


async def run_bench(
    root: Path,
    pages: Sequence[BenchPage],
    model_for: Callable[[str], Model],
    out_dir: Path,
    *,
    subagent_model_for: Callable[[str], Model] | None = None,
    config: UI2CodeConfig | None = None,
    budgets: Budgets | None = None,
    on_row: Callable[[BenchRow], None] | None = None,
) -> list[BenchRow]:
    """Run ui2code on each page; ``model_for(page_id)`` gives the model (so scripts can differ per page)."""
    rows = []
    for page in pages:
        html = (root / "pages" / f"{page.id}.html").read_text(encoding="utf-8")
        t0 = time.monotonic()
        result = await run_ui2code(
            root / "pages" / f"{page.id}.png",
            model=model_for(page.id),
            subagent_model=subagent_model_for(page.id) if subagent_model_for else None,
            out_dir=out_dir / page.id,
            config=config,
            budgets=budgets,
            reference_html=html,
        )
        row = BenchRow(
            page=page.id,
            kind=page.kind,
            ok=result.ok,
            rounds=len(result.rounds),
            first_round=result.rounds[0].overall if result.rounds else None,
            best_visual=result.best.overall if result.best else None,
            dom=result.final_dom,
            first_dom=result.first_dom,
            subagents=int(result.summary.get("subagents", 0)),
            seconds=round(time.monotonic() - t0, 2),
            message=result.message,
        )
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


class CheckRow(BaseModel):
    page: str
    scores: dict[str, float]  # "self", the LEVELS, "blank" → overall
    ordered: bool


async def metric_check(root: Path, pages: Sequence[BenchPage], on_row: Callable[[CheckRow], None] | None = None) -> list[CheckRow]:
    """Overall score of each reference against itself, its degraded variants and a blank page."""
    rows = []
    for page in pages:
        html = (root / "pages" / f"{page.id}.html").read_text(encoding="utf-8")
        png = Image.open(root / "pages" / f"{page.id}.png").convert("RGB")
        rendered = await render_page(html, png.width, min(png.height, 1024))
        reference = Page(png, rendered.blocks, html, "dom")
        scores = {"self": score_pages(reference, rendered).overall}
        for level, name in enumerate(LEVELS, 1):
            scores[name] = (await score_html(reference, await degrade(html, level)))[0].overall
        scores["blank"] = (await score_html(reference, BLANK_HTML))[0].overall
        values = list(scores.values())
        row = CheckRow(page=page.id, scores=scores, ordered=values[0] >= 0.99 and all(a > b for a, b in zip(values, values[1:])))
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows
