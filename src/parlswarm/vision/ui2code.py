"""ui2code: a screenshot (or a recording) in, one self-contained web page out.

The loop of "coding with vision", made explicit and parallel. The orchestrator sees the
screenshot, splits the page into regions and gives each to a sub-agent with the crop of
its region (``assign_task(..., image="input[x0,y0,x1,y1]")``); the sub-agents write their
sections in parallel (``write_section``). The orchestrator assembles the page
(``assemble_page``), which renders it in Chromium and compares it with the screenshot: one
*round*. It then assigns fixes for the worst sections and assembles again, until the score
stops improving (``patience`` rounds without a gain of ``min_gain``), the rounds are used
up, or a budget of the run ends. The best round is kept.

Scores during the loop are the ``visual`` ones of :mod:`parlswarm.vision.metrics`: the
reference is only a picture. When the reference HTML is known (the benchmark), the final
page is also scored in ``dom`` mode, Design2Code's metrics.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field

from parlswarm import prompts
from parlswarm.models.base import Model
from parlswarm.swarm import RunResult, Swarm
from parlswarm.tools import ToolError, Toolset, tool
from parlswarm.trace.recorder import Trace
from parlswarm.types import Budgets, ContentPart, TextPart
from parlswarm.vision.browser import BrowserError, shared_browser
from parlswarm.vision.frames import key_frames
from parlswarm.vision.images import ImageRegistry, ImageSource, image_part, to_pil
from parlswarm.vision.messages import ToolImagesAsUser
from parlswarm.vision.metrics import (
    Page,
    Scores,
    diff_image,
    image_page,
    render_page,
    score_pages,
    side_by_side,
    ssim,
    strip,
)
from parlswarm.vision.tools import compare_images, crop_image, render_html

log = logging.getLogger(__name__)

FONT_NOTE = "DejaVu Sans, DejaVu Serif, DejaVu Sans Mono, Liberation Sans, Liberation Serif, Liberation Mono"
_EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//|@import""", re.I)
_FENCE = re.compile(r"^\s*```[\w-]*\s*\n(?P<body>.*?)\n\s*```\s*$", re.S)
_BODY = re.compile(r"<body[^>]*>(?P<body>.*)</body>", re.S | re.I)
_HEAD_STYLES = re.compile(r"<style[^>]*>.*?</style>", re.S | re.I)

SECTION_BOXES_JS = r"""
() => Array.from(document.querySelectorAll('[data-section]')).map((el) => {
  const range = document.createRange();
  range.selectNodeContents(el);
  const r = range.getBoundingClientRect();
  return {name: el.dataset.section, x0: r.left + scrollX, y0: r.top + scrollY, x1: r.right + scrollX, y1: r.bottom + scrollY};
})
"""


class UI2CodeConfig(BaseModel):
    """Knobs of the loop. Budgets of the run (steps, tokens, seconds) come separately."""

    max_rounds: int = Field(4, ge=1, description="assemble_page calls at most")
    patience: int = Field(1, ge=1, description="rounds without gain before the loop stops")
    min_gain: float = Field(0.002, ge=0, description="overall score gain that counts as improvement")
    max_sections: int = Field(12, ge=1)
    max_frames: int = Field(6, ge=1, description="key frames of a recording shown to the orchestrator")
    tool_images: Literal["user", "inline"] = Field(
        "user", description="send tool-result images as user content (accepted everywhere) or inline in tool messages"
    )


class SectionScore(BaseModel):
    """How one rendered section compares with the screenshot."""

    in_place: float  # SSIM against the same area of the screenshot
    aligned: float  # SSIM against the area it matches best, ``offset`` pixels up or down
    offset: int  # where that area is, relative to the section (negative: higher up)


MAX_OFFSET = 400


def section_score(reference: Image.Image, candidate: Image.Image, box: Sequence[int]) -> SectionScore:
    """Compare the candidate's section in ``box`` with the screenshot, in place and best aligned.

    A section that is right but pushed down by a taller section above it scores low in
    place and high aligned; the offset says by how much it is displaced.
    """
    x0, y0, x1, y1 = max(0, box[0]), max(0, box[1]), min(candidate.width, box[2]), min(candidate.height, box[3])
    if x1 - x0 < 8 or y1 - y0 < 8:
        return SectionScore(in_place=0.0, aligned=0.0, offset=0)
    crop = candidate.crop((x0, y0, x1, y1))

    def at(dy: int) -> Image.Image:
        canvas = Image.new("RGB", crop.size, (255, 255, 255))
        canvas.paste(reference.crop((x0, y0 + dy, x1, y1 + dy)), (0, 0))  # outside the screenshot: white
        return canvas

    # Coarse search on grey quarter-size pictures, then SSIM where it fits best.
    scale = 4
    small = np.asarray(crop.convert("L").resize((max(1, crop.width // scale), max(1, crop.height // scale))), dtype=np.float32)
    ref_grey = Image.new("L", (reference.width, reference.height + 2 * MAX_OFFSET), 255)
    ref_grey.paste(reference.convert("L"), (0, MAX_OFFSET))
    ref_small = np.asarray(
        ref_grey.resize((max(1, ref_grey.width // scale), max(1, ref_grey.height // scale))), dtype=np.float32
    )
    sx0, sh, sw = x0 // scale, small.shape[0], small.shape[1]
    best_dy, best_err = 0, float("inf")
    for step in range(-MAX_OFFSET // scale, MAX_OFFSET // scale + 1):
        top = (y0 + MAX_OFFSET) // scale + step
        window = ref_small[top : top + sh, sx0 : sx0 + sw]
        if window.shape != small.shape:
            continue
        err = float(np.abs(window - small).mean()) + (0.01 if step else 0.0)  # ties go to "in place"
        if err < best_err:
            best_dy, best_err = step * scale, err
    in_place = ssim(at(0), crop)
    aligned = max(in_place, ssim(at(best_dy), crop)) if best_dy else in_place
    return SectionScore(in_place=round(in_place, 4), aligned=round(aligned, 4), offset=best_dy if aligned > in_place else 0)


class RoundRecord(BaseModel):
    """One assemble-render-compare round."""

    round: int
    overall: float
    scores: Scores
    sections: dict[str, SectionScore]
    boxes: dict[str, list[int]]
    improved: bool
    seconds: float
    assembled_by: Literal["orchestrator", "parlswarm"] = "orchestrator"


@dataclass
class Round:
    record: RoundRecord
    html: str
    image: Image.Image


@dataclass
class Workspace:
    """The state of one ui2code run: the reference, the sections written so far, the rounds."""

    reference: Page
    config: UI2CodeConfig
    registry: ImageRegistry
    sections: dict[str, str] = field(default_factory=dict)
    css: str = "body{margin:0}"
    title: str = "Page"
    rounds: list[Round] = field(default_factory=list)
    stop_reason: str | None = None
    _without_gain: int = 0

    @property
    def width(self) -> int:
        return self.reference.image.width

    @property
    def height(self) -> int:
        return self.reference.image.height

    @property
    def best(self) -> Round | None:
        return max(self.rounds, key=lambda r: r.record.overall, default=None)

    def document(self, order: list[str], css: str | None = None, title: str | None = None) -> str:
        css = self.css if css is None else css
        title = self.title if title is None else title
        body = "\n".join(
            f'<div data-section="{name}" style="display:contents">\n{self.sections[name]}\n</div>' for name in order
        )
        return (
            f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{_escape(title)}</title>\n'
            f"<style>\n{css}\n</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
        )

    async def run_round(self, order: list[str], css: str, title: str, by: str = "orchestrator") -> Round:
        """Assemble, render, score and record one round; decides whether the loop stops."""
        t0 = time.monotonic()
        self.css, self.title = css or self.css, title or self.title
        html = self.document(order)
        try:
            rendered = await shared_browser().render(
                html, self.width, min(self.height, 1024), script=SECTION_BOXES_JS
            )
        except (BrowserError, ValueError) as exc:
            raise ToolError(str(exc)) from None
        image = Image.open(io.BytesIO(rendered.png)).convert("RGB")
        boxes = {b["name"]: [round(b["x0"]), round(b["y0"]), round(b["x1"]), round(b["y1"])] for b in rendered.result or []}
        scores, sections = await asyncio.to_thread(self._score, image, boxes)
        best_before = self.best.record.overall if self.rounds else None
        improved = best_before is None or scores.overall > best_before + self.config.min_gain
        record = RoundRecord(
            round=len(self.rounds) + 1,
            overall=scores.overall,
            scores=scores,
            sections=sections,
            boxes=boxes,
            improved=improved,
            seconds=round(time.monotonic() - t0, 3),
            assembled_by=by,  # type: ignore[arg-type]
        )
        result = Round(record=record, html=html, image=image)
        self.rounds.append(result)
        self._without_gain = 0 if improved else self._without_gain + 1
        if self._without_gain >= self.config.patience:
            self.stop_reason = f"the score stopped improving ({self._without_gain} round(s) without a gain over {self.config.min_gain:g})"
        elif len(self.rounds) >= self.config.max_rounds:
            self.stop_reason = f"the round budget ({self.config.max_rounds}) is used up"
        return result

    def _score(self, image: Image.Image, boxes: dict[str, list[int]]) -> tuple[Scores, dict[str, SectionScore]]:
        scores = score_pages(self.reference, image_page(image))
        sections = {name: section_score(self.reference.image, image, box) for name, box in boxes.items()}
        return scores, sections


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clean_fragment(html: str) -> str:
    """A section as models write it → a fragment: code fences dropped, a whole document cut to its body."""
    fenced = _FENCE.match(html)
    if fenced:
        html = fenced.group("body")
    body = _BODY.search(html)
    if body:
        head = html[: body.start()]
        html = "".join(_HEAD_STYLES.findall(head)) + body.group("body")
    return html.strip()


def make_tools(ws: Workspace) -> Toolset:
    """The tools of one ui2code run, bound to its workspace."""

    @tool
    async def write_section(name: str, html: str) -> list[ContentPart]:
        """Save the HTML of one section of the page (replacing an earlier version with that name) and see it rendered.

        Write one self-contained fragment: a <style> element whose rules are scoped to the
        section (e.g. '#pricing .card {...}'), then the section's element, e.g.
        <section id="pricing">...</section>. No <html>, <head> or <body>. The browser has no
        network: no CDN CSS or JS, no web fonts, no remote images. Fonts that exist: DejaVu
        Sans/Serif/Sans Mono, Liberation Sans/Serif/Mono. Draw pictures with CSS or inline SVG.

        Args:
            name: The section's name, as the orchestrator gave it (e.g. 'header', 'hero').
            html: The section fragment.
        """
        name = name.strip()
        if not re.fullmatch(r"[\w-]{1,40}", name):
            raise ToolError("name must be 1-40 letters, digits, '-' or '_'")
        fragment = clean_fragment(html)
        if not fragment:
            raise ToolError("html is empty")
        if name not in ws.sections and len(ws.sections) >= ws.config.max_sections:
            raise ToolError(f"at most {ws.config.max_sections} sections; replace one of: {', '.join(ws.sections)}")
        replaced = name in ws.sections
        ws.sections[name] = fragment
        notes = []
        if _EXTERNAL.search(fragment):
            notes.append("warning: it references external URLs; they are blocked and will not load")
        try:
            rendered = await shared_browser().render(ws.document([name]), ws.width, 64)
        except (BrowserError, ValueError) as exc:
            raise ToolError(f"saved, but rendering failed: {exc}") from None
        img = Image.open(io.BytesIO(rendered.png)).convert("RGB")
        ref = ws.registry.add(img, prefix=f"section-{name}")
        verb = "replaced" if replaced else "saved"
        text = f"Section '{name}' {verb} ({len(fragment)} characters). Rendered alone as image '{ref}' ({img.width}x{img.height}):"
        return [TextPart(text="\n".join([text, *notes])), image_part(img)]

    @tool
    async def assemble_page(order: list[str], css: str = "", title: str = "") -> list[ContentPart]:
        """Assemble the page from its saved sections, render it and compare it with the screenshot: one round.

        Returns the scores (overall and per section; 1.0 = identical), the rendered page and a
        diff image (red = differs). Sections are placed in order, each inside a wrapper
        <div data-section="NAME" style="display:contents">, so avoid selectors such as
        'body > section' or ':first-child' that the wrapper would break.

        Args:
            order: Section names, top to bottom.
            css: Page-wide CSS: body margin, background, default font and colour, shared classes.
            title: The page's title.
        """
        if ws.stop_reason is not None:
            raise ToolError(f"no more rounds: {ws.stop_reason}. Reply with your summary now.")
        if not order:
            raise ToolError("order must list at least one section")
        unknown = [n for n in order if n not in ws.sections]
        if unknown:
            raise ToolError(f"unknown section(s) {', '.join(unknown)}; written so far: {', '.join(ws.sections) or 'none'}")
        if len(set(order)) != len(order):
            raise ToolError("order names a section twice")
        done = await ws.run_round(order, css, title)
        return round_report(ws, done)

    return Toolset([write_section, assemble_page, render_html, crop_image, compare_images])


def round_report(ws: Workspace, done: Round) -> list[ContentPart]:
    """What the orchestrator reads after a round."""
    rec = done.record
    diff = diff_image(ws.reference.image, done.image)
    page_id = ws.registry.add(done.image, f"page-{rec.round}")
    diff_id = ws.registry.add(diff, f"diff-{rec.round}")
    best = ws.best
    assert best is not None
    if rec.round == 1:
        gain = "first round"
    else:
        previous = ws.rounds[-2].record.overall
        gain = f"{rec.overall - previous:+.3f} vs round {rec.round - 1}; best is round {best.record.round} ({best.record.overall:.3f})"
    lines = [
        f"Round {rec.round} of at most {ws.config.max_rounds}: overall {rec.overall:.3f} ({gain}).",
        f"Scores: {rec.scores.line()}.",
        "Sections, worst first: similarity to the screenshot where the section matches best (1.0 = same), "
        "how far that place is from where it was rendered, and its rendered box x0,y0,x1,y1:",
    ]
    for name, sec in sorted(rec.sections.items(), key=lambda kv: kv[1].aligned):
        box = rec.boxes.get(name, [0, 0, 0, 0])
        if sec.offset:
            where = f"belongs {abs(sec.offset)}px {'higher' if sec.offset < 0 else 'lower'} ({sec.in_place:.3f} in place)"
        else:
            where = "in place"
        lines.append(f"- {name}: {sec.aligned:.3f} {where} [{','.join(map(str, box))}]")
    missing = [n for n in ws.sections if n not in rec.sections]
    if missing:
        lines.append(f"Written but not placed: {', '.join(missing)}.")
    lines.append(f"Rendered page is image '{page_id}' ({done.image.width}x{done.image.height}); diff is image '{diff_id}'.")
    if ws.stop_reason is not None:
        lines.append(f"STOP: {ws.stop_reason}. The best round is kept. Do not call assemble_page again; reply with a short summary.")
    else:
        lines.append("Next: assign fixes for the worst sections, then call assemble_page again.")
    return [TextPart(text="\n".join(lines)), image_part(done.image), image_part(diff)]


class UI2CodeResult(BaseModel):
    """What a ui2code run produced and where it wrote it."""

    out_dir: Path
    ok: bool
    message: str
    rounds: list[RoundRecord]
    best_round: int | None
    stop_reason: str | None
    final_dom: Scores | None = None  # the kept page against the reference HTML, when it was given
    first_dom: Scores | None = None  # round 1 against the reference HTML, to show what refinement gained
    files: dict[str, str] = Field(default_factory=dict)
    answer: str = ""
    summary: dict[str, Any] = Field(default_factory=dict)

    @property
    def best(self) -> RoundRecord | None:
        return next((r for r in self.rounds if r.round == self.best_round), None)


def _task_content(ws: Workspace, frames: list[str]) -> list[ContentPart]:
    frame_note = ""
    if frames:
        frame_note = (
            f"\nKey frames of a screen recording of the page follow it as images {', '.join(repr(f) for f in frames)}: "
            "they show how the page behaves (hover states, menus, animation); build that behaviour with CSS or inline "
            "JavaScript where you can."
        )
    text = prompts.load("ui2code_task").format(
        width=ws.width,
        height=ws.height,
        frames=frame_note,
        max_rounds=ws.config.max_rounds,
        section_prompt=prompts.load("ui2code_section"),
    )
    parts: list[ContentPart] = [TextPart(text=text), ws.registry.part("input")]
    parts.extend(ws.registry.part(f) for f in frames)
    return parts


def default_budgets() -> Budgets:
    return Budgets(
        max_orchestrator_steps=40,
        max_subagent_steps=6,
        max_subagents=60,
        max_concurrent_subagents=12,
        max_tool_calls=400,
        max_depth=1,
    )


async def run_ui2code(
    image: ImageSource | None,
    *,
    model: Model,
    out_dir: str | Path,
    subagent_model: Model | None = None,
    video: str | Path | None = None,
    config: UI2CodeConfig | None = None,
    budgets: Budgets | None = None,
    reference_html: str | None = None,
    trace: Trace | None = None,
) -> UI2CodeResult:
    """Run the ui2code loop on ``image`` (or the first key frame of ``video``); write the files to ``out_dir``."""
    config = config or UI2CodeConfig()
    out = Path(out_dir)
    frames = key_frames(video, config.max_frames) if video is not None else []
    if image is None:
        if not frames:
            raise ValueError("give a screenshot, a recording (--video), or both")
        image = frames[0]
    reference_image = to_pil(image)
    if not (16 <= reference_image.width <= 4096 and 16 <= reference_image.height <= 8192):
        raise ValueError(f"screenshot of {reference_image.width}x{reference_image.height} is out of range (16..4096 x 16..8192)")
    registry = ImageRegistry()
    registry.add(reference_image, "input")
    frame_ids = [registry.add(f, f"frame-{i + 1}") for i, f in enumerate(frames)]
    reference = await asyncio.to_thread(image_page, reference_image)
    ws = Workspace(reference=reference, config=config, registry=registry)

    def wrap(m: Model) -> Model:
        return ToolImagesAsUser(m) if config.tool_images == "user" else m

    swarm = Swarm(
        wrap(model),
        subagent_model=wrap(subagent_model or model),
        tools=make_tools(ws),
        budgets=budgets or default_budgets(),
        system_prompt=prompts.load("ui2code_orchestrator"),
    )
    t0 = time.monotonic()
    result: RunResult = await swarm.run(_task_content(ws, frame_ids), images=registry, trace=trace)
    if ws.stop_reason is None:
        ws.stop_reason = f"the orchestrator ended the run ({result.result.stop_reason})"
    if not ws.rounds and ws.sections:
        # The orchestrator wrote sections but never assembled them (a budget ended the run, or
        # it forgot): assemble what exists, in the order written, so the work is not lost.
        log.info("no round was assembled; assembling %d sections in the order written", len(ws.sections))
        ws.stop_reason = ws.stop_reason or "the run ended before any round was assembled"
        await ws.run_round(list(ws.sections), ws.css, ws.title, by="parlswarm")
    return await _write_outputs(ws, result, out, model.name, reference_html, time.monotonic() - t0)


async def _write_outputs(
    ws: Workspace, result: RunResult, out: Path, model_name: str, reference_html: str | None, seconds: float
) -> UI2CodeResult:
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    trace_path = result.trace.save_jsonl(out / "trace.jsonl")
    files["trace"] = trace_path.name
    try:
        from parlswarm.trace.report import write_report
    except ImportError:  # the HTML report is optional
        write_report = None  # type: ignore[assignment]
    if write_report is not None:
        try:
            write_report(result.trace.events, out / "report.html", title=f"ui2code · {model_name}")
            files["report"] = "report.html"
        except Exception:  # a report failure must not lose the page
            log.warning("could not write report.html", exc_info=True)
    best = ws.best
    final_dom: Scores | None = None
    first_dom: Scores | None = None
    if best is not None:
        (out / "index.html").write_text(best.html, encoding="utf-8")
        best.image.save(out / "screenshot.png", optimize=True)
        label = f"rendered: {model_name}, round {best.record.round}, score {best.record.overall:.3f}"
        side_by_side(ws.reference.image, best.image, ("reference", label)).save(out / "side-by-side.png", optimize=True)
        diff_image(ws.reference.image, best.image).save(out / "diff.png", optimize=True)
        shown = ws.rounds if len(ws.rounds) <= 4 else [ws.rounds[0], *ws.rounds[-3:]]
        progress = strip(
            [ws.reference.image, *(r.image for r in shown)],
            ["reference", *(f"round {r.record.round} · {r.record.overall:.3f}" for r in shown)],
            column_width=min(ws.width, 400),
        )
        progress.save(out / "progress.png", optimize=True)
        rounds_dir = out / "rounds"
        rounds_dir.mkdir(exist_ok=True)
        for r in ws.rounds:
            r.image.save(rounds_dir / f"round-{r.record.round}.png", optimize=True)
        files.update(
            page="index.html", screenshot="screenshot.png", side_by_side="side-by-side.png", diff="diff.png",
            progress="progress.png", rounds="rounds/",
        )
        if reference_html is not None:
            reference_dom = await render_page(reference_html, ws.width, min(ws.height, 1024))
            reference_page = Page(ws.reference.image, reference_dom.blocks, reference_html, "dom")
            final_dom = score_pages(reference_page, await render_page(best.html, ws.width, min(ws.height, 1024)))
            first = ws.rounds[0]
            first_dom = final_dom if first is best else score_pages(
                reference_page, await render_page(first.html, ws.width, min(ws.height, 1024))
            )
    ok = best is not None
    message = (
        f"best round {best.record.round} of {len(ws.rounds)}: overall {best.record.overall:.3f}"
        if best is not None
        else f"no page was produced ({result.result.stop_reason}: {result.result.error or result.answer[:200]})"
    )
    payload = UI2CodeResult(
        out_dir=out,
        ok=ok,
        message=message,
        rounds=[r.record for r in ws.rounds],
        best_round=best.record.round if best is not None else None,
        stop_reason=ws.stop_reason,
        final_dom=final_dom,
        first_dom=first_dom,
        files=files,
        answer=result.answer,
        summary={**result.summary.model_dump(), "wall_seconds": round(seconds, 3), "model": model_name},
    )
    files["scores"] = "scores.json"
    payload.files = files
    scores = payload.model_dump(mode="json", exclude={"out_dir"})
    (out / "scores.json").write_text(json.dumps(scores, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return payload


__all__ = ["RoundRecord", "UI2CodeConfig", "UI2CodeResult", "Workspace", "clean_fragment", "make_tools", "run_ui2code"]

