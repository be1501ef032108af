"""ui2code end to end with a scripted multimodal model, the loop's tools, and the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from parlswarm.cli import app
from parlswarm.models.scripted import ScriptedModel
from parlswarm.types import ImagePart, Message, ModelResponse, ToolSpec, UserMessage
from parlswarm.vision.browser import Browser, shared_browser
from parlswarm.vision.images import ImageRegistry, to_pil
from parlswarm.vision.metrics import image_page
from parlswarm.vision.scripted import ScriptedUI2Code, load_script
from parlswarm.vision.ui2code import (
    UI2CodeConfig,
    Workspace,
    _task_content,
    clean_fragment,
    make_tools,
    run_ui2code,
    section_score,
)

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "ui2code"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    yield shared_browser()


class Recording:
    """A model wrapper that keeps the messages of every call."""

    def __init__(self, inner: ScriptedModel) -> None:
        self.inner, self.name, self.calls = inner, inner.name, []  # type: list[Sequence[Message]]

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelResponse:
        self.calls.append(list(messages))
        return await self.inner.complete(messages, tools)


async def test_ui2code_runs_end_to_end_on_a_scripted_multimodal_model(tmp_path: Path, browser: Browser) -> None:
    page = "dashboard-01"
    script = load_script(BENCH / "scripted" / f"{page}.json")
    model = Recording(ScriptedModel(ScriptedUI2Code(script), name="scripted-ui2code"))
    out = tmp_path / "out"
    result = await run_ui2code(
        BENCH / "pages" / f"{page}.png",
        model=model,
        out_dir=out,
        reference_html=(BENCH / "pages" / f"{page}.html").read_text(),
    )
    assert result.ok, result.message

    # The orchestrator saw the screenshot in its first message.
    first = model.calls[0]
    assert isinstance(first[1], UserMessage) and isinstance(first[1].content, list)
    assert to_pil(next(p for p in first[1].content if isinstance(p, ImagePart))).size == (1024, 907)

    # One sub-agent per region, all launched in the same orchestrator step and running at once,
    # each given the crop of its region.
    events = json.loads("[" + ",".join((out / "trace.jsonl").read_text().splitlines()) + "]")
    started = [e for e in events if e["kind"] == "agent_started" and e["depth"] == 1]
    finished = {e["agent_id"]: e for e in events if e["kind"] == "agent_finished"}
    first_wave = [e for e in started if e["parent_step"] == started[0]["parent_step"]]
    assert len(first_wave) == len(script.regions) == 4
    assert max(e["t"] for e in first_wave) < min(finished[e["agent_id"]]["t"] for e in first_wave)  # overlapped
    crops = sorted(
        to_pil(p).size
        for call in model.calls
        if call[1].content and isinstance(call[1].content, list) and str(call[1].content[0].text).startswith("Section:")  # type: ignore[union-attr]
        and not any(m.role == "assistant" for m in call)
        for p in call[1].content  # type: ignore[union-attr]
        if isinstance(p, ImagePart)
    )
    expected = sorted((r.box[2] - r.box[0], r.box[3] - r.box[1]) for r in script.regions)
    assert all(size in crops for size in expected)
    assert all("written" in finished[e["agent_id"]]["content"] for e in started)

    # At least one refinement round, and it helped; the best round is kept.
    assert len(result.rounds) >= 2
    assert result.rounds[1].overall > result.rounds[0].overall
    assert result.best_round == max(result.rounds, key=lambda r: r.overall).round
    assert result.stop_reason

    # Files: a self-contained page rendered in Chromium, pictures, scores and the trace.
    for name in ("index.html", "screenshot.png", "side-by-side.png", "diff.png", "scores.json", "trace.jsonl"):
        assert (out / name).is_file(), name
    html = (out / "index.html").read_text()
    assert "http://" not in html and "https://" not in html and 'data-section="kpis"' in html
    shot = Image.open(out / "screenshot.png")
    assert shot.width == 1024 and np.unique(np.asarray(shot.convert("L"))).size > 10  # a real render, not blank
    assert Image.open(out / "side-by-side.png").width > 2048
    scores = json.loads((out / "scores.json").read_text())
    assert [r["round"] for r in scores["rounds"]] == list(range(1, len(result.rounds) + 1))
    assert scores["final_dom"]["overall"] > scores["rounds"][0]["overall"] - 0.2
    assert result.final_dom is not None and result.final_dom.mode == "dom"
    try:
        import parlswarm.trace.report  # noqa: F401
    except ImportError:
        pass
    else:
        assert (out / "report.html").is_file()


async def test_assemble_page_refuses_unknown_sections_and_rounds_after_stop(browser: Browser) -> None:
    reference = Image.new("RGB", (320, 200), "white")
    ws = Workspace(reference=image_page(reference), config=UI2CodeConfig(max_rounds=1), registry=ImageRegistry())
    tools = make_tools(ws)
    write, assemble = tools.get("write_section"), tools.get("assemble_page")
    assert write is not None and assemble is not None
    bad = await assemble.invoke({"order": ["nope"]})
    assert not bad.ok and "unknown section(s) nope" in str(bad.content)
    fenced = "```html\n<style>#a{height:50px;background:#000}</style><div id='a'>A</div>\n```"
    wrote = await write.invoke({"name": "a", "html": fenced})
    assert wrote.ok and "saved" in str(wrote.content[0])  # type: ignore[index]
    assert ws.sections["a"].startswith("<style>")
    external = await write.invoke({"name": "b", "html": "<img src='https://cdn.example.com/x.png'>"})
    assert "external URLs" in str(external.content[0])  # type: ignore[index]
    done = await assemble.invoke({"order": ["a", "b"], "css": "body{margin:0}"})
    assert done.ok and "STOP: the round budget (1) is used up" in str(done.content[0])  # type: ignore[index]
    again = await assemble.invoke({"order": ["a"]})
    assert not again.ok and "no more rounds" in str(again.content)


def test_clean_fragment_keeps_styles_of_a_whole_document() -> None:
    doc = "<html><head><style>p{color:red}</style></head><body><p>x</p></body></html>"
    assert clean_fragment(doc) == "<style>p{color:red}</style><p>x</p>"
    assert clean_fragment("  <p>y</p> ") == "<p>y</p>"


def test_section_score_finds_a_displaced_section() -> None:
    reference = Image.new("RGB", (200, 400), "white")
    reference.paste(Image.new("RGB", (200, 60), (200, 30, 30)), (0, 100))
    candidate = Image.new("RGB", (200, 400), "white")
    candidate.paste(Image.new("RGB", (200, 60), (200, 30, 30)), (0, 140))  # 40px too low
    score = section_score(reference, candidate, [0, 120, 200, 220])
    assert score.offset == -40 and score.aligned > 0.99 > score.in_place


def test_key_frames_reach_the_orchestrator() -> None:
    registry = ImageRegistry()
    registry.add(Image.new("RGB", (64, 64), "white"), "input")
    registry.add(Image.new("RGB", (64, 64), "red"), "frame-1")
    ws = Workspace(reference=image_page(Image.new("RGB", (64, 64), "white")), config=UI2CodeConfig(), registry=registry)
    parts = _task_content(ws, ["frame-1"])
    assert "'frame-1'" in parts[0].text and "64x64" in parts[0].text  # type: ignore[union-attr]
    assert [to_pil(p).getpixel((0, 0)) for p in parts[1:]] == [(255, 255, 255), (255, 0, 0)]  # type: ignore[arg-type]


def test_cli_ui2code_and_bench_ui(tmp_path: Path, browser: Browser, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BENCH.parents[1])
    runner = CliRunner()
    out = tmp_path / "cli"
    res = runner.invoke(app, ["ui2code", "benchmarks/ui2code/pages/form-01.png", "--model",
                              "scripted-ui2code:benchmarks/ui2code/scripted/form-01.json", "-o", str(out), "--max-rounds", "2"])
    assert res.exit_code == 0, res.output
    assert "round" in res.output and (out / "index.html").is_file()
    bench = tmp_path / "bench"
    res = runner.invoke(app, ["bench-ui", "--pages", "form-03", "--max-rounds", "2", "-o", str(bench),
                              "--model", "scripted-ui2code:benchmarks/ui2code/scripted/{page}.json"])
    assert res.exit_code == 0, res.output
    rows = json.loads((bench / "bench-ui.json").read_text())["pages"]
    assert [r["page"] for r in rows] == ["form-03"] and rows[0]["dom"]["overall"] > 0.5
    res = runner.invoke(app, ["ui2code", "--model", "scripted-ui2code:nope.json", "-o", str(out)])
    assert res.exit_code != 0 and "give a screenshot" in str(res.exception or res.output)
