"""The HTML run report: lanes, critical path, self-containment, checked in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from parlswarm import RunResult
from parlswarm.pricing import Prices
from parlswarm.testing.scripted_runs import fanout_swarm
from parlswarm.trace.recorder import Trace
from parlswarm.trace.report import _distinct_labels, build_report, render_html, write_report

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
N = 30
LENGTHS = [1 + (7 * i) % 5 for i in range(N)]
LENGTHS[17] = 9  # one straggler: the critical path goes through it
ITEMS = [f"item {i:02d}" for i in range(N)]


@pytest.fixture(scope="module")
def run30() -> RunResult:
    prices = Prices.parse("scripted-orchestrator=3/0.3/15;scripted-subagent=0.6/0.15/2.5")
    return fanout_swarm(ITEMS, LENGTHS, prices=prices).run_sync("Find facts about 30 items.")


def test_thirty_subagents_give_31_lanes_and_the_runtimes_critical_path(run30: RunResult) -> None:
    data = build_report(run30.trace.events)
    assert len(data.lanes) == N + 1
    # The runtime counts critical steps twice: from the trace and live in the agent loop.
    assert run30.summary.critical_steps == run30.result.critical_steps == 1 + (1 + 9 + 1) + 1
    assert data.critical_bars == len(data.critical_path) == run30.summary.critical_steps
    root = data.lanes[0]
    assert root.parent_id is None and root.s1 == run30.summary.critical_steps
    slowest = next(lane for lane in data.lanes if lane.slowest)
    assert slowest.agent_id == data.slowest and slowest.task.startswith("item 17:")
    assert slowest.on_critical_path and slowest.critical_steps == 10
    assert all(bar.critical for bar in slowest.step_bars)
    others = [lane for lane in data.lanes[1:] if lane is not slowest]
    assert not any(bar.critical for lane in others for bar in lane.step_bars)
    assert "item 17" in data.explanation[0] and "waited 10 critical steps" in data.explanation[0]
    assert "Slowest sub-agent" in data.headline
    # Each sub-agent's assignment and the single message it returned.
    assert all(lane.task and lane.result.endswith("facts found") for lane in data.lanes[1:])
    # Step axis: every sub-agent starts right after the orchestrator turn that launched it.
    spawn_bar = root.step_bars[1]
    assert spawn_bar.wait == 10 and all(lane.s0 == spawn_bar.s0 + 1 for lane in data.lanes[1:])
    assert sum(lane.steps for lane in data.lanes) == run30.summary.steps


def test_lane_labels_show_what_tells_templated_sibling_tasks_apart() -> None:
    template = "Fill in a table for exactly these places (e.g. {c}/government):\n- {p} ({c})\n\nReply with a table."
    tasks = [template.format(c="ar", p="Argentina"), template.format(c="bl", p="Bolivia")]
    assert _distinct_labels(tasks) == ["…Argentina (ar)", "…Bolivia (bl)"]
    assert _distinct_labels(["Research this well: the population of X", "Research this well: the population of Y"]) == [
        "…X", "…Y"]
    assert _distinct_labels(["France: capital", "Japan: capital"]) == ["France: capital", "Japan: capital"]
    assert _distinct_labels(["same task", "same task"]) == ["same task", "same task"]


def test_html_is_self_contained_and_escapes_trace_text(run30: RunResult) -> None:
    html = render_html(build_report(run30.trace.events))
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(http" not in html
    hostile = fanout_swarm(["</script><script>alert(1)</script>"], [1]).run_sync("<!-- x -->")
    page = render_html(build_report(hostile.trace.events))
    assert "<script>alert(1)" not in page and "<!-- x -->" not in page
    payload = page.split('id="report-data">', 1)[1].split("</script>", 1)[0]
    data = json.loads(payload)
    assert data["lanes"][1]["task"].startswith("</script><script>alert(1)</script>")


def _chromium_available() -> bool:
    return Path(CHROMIUM).exists()


@pytest.mark.skipif(not _chromium_available(), reason="Debian chromium not installed (make test installs it)")
def test_report_in_headless_chromium(run30: RunResult, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    path = write_report(run30.trace.events, tmp_path / "report.html")
    hostile = fanout_swarm(["<img src=x onerror=alert(1)>"], [1]).run_sync("t")
    hostile_path = write_report(hostile.trace.events, tmp_path / "hostile.html")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            problems: list[str] = []
            requests: list[str] = []
            page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri())
            page.wait_for_selector("body[data-ready='1']")
            assert page.locator("#gantt svg .lane").count() == N + 1
            assert page.locator("#gantt svg .step.critical").count() == run30.summary.critical_steps
            assert page.locator("#gantt svg .lane.slowest").count() == 1
            assert page.locator("#agents tr[data-agent]").count() == N + 1
            assert page.locator("#details details").count() == N + 1
            assert "item 17" in page.locator("#explanation").inner_text()
            page.screenshot(path=str(tmp_path / "report-wall-clock.png"), full_page=True)
            page.click("#axis-steps")
            assert page.get_attribute("#axis-steps", "aria-pressed") == "true"
            assert page.locator("#gantt svg .lane").count() == N + 1
            assert page.locator("#gantt svg .step.critical").count() == run30.summary.critical_steps
            page.screenshot(path=str(tmp_path / "report-steps.png"), full_page=True)
            page.locator("#gantt svg .lane.slowest").click()
            assert page.locator("#details details[open]").count() == 1

            page.goto(hostile_path.as_uri())
            page.wait_for_selector("body[data-ready='1']")
            assert "<img src=x onerror=alert(1)>" in (page.locator("#details").text_content() or "")
        finally:
            browser.close()
    assert problems == []
    assert requests == [path.as_uri(), hostile_path.as_uri()]  # the files themselves, nothing else
    assert (tmp_path / "report-wall-clock.png").stat().st_size > 10_000
    assert (tmp_path / "report-steps.png").stat().st_size > 10_000


def _parlswarm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parlswarm", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})


def test_trace_report_command(run30: RunResult, tmp_path: Path) -> None:
    trace = run30.trace.save_jsonl(tmp_path / "run.jsonl")
    proc = _parlswarm("trace", "report", str(trace), "-o", str(tmp_path / "out" / "r.html"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path / "out" / "r.html")
    assert "Critical path: 13 critical steps" in proc.stderr
    written = (tmp_path / "out" / "r.html").read_text()
    assert written == render_html(build_report(Trace.load_jsonl(trace).events))
    proc = _parlswarm("trace", "report", str(trace))  # next to the trace by default
    assert proc.returncode == 0 and (tmp_path / "run.html").exists()

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "nope"}\n')
    proc = _parlswarm("trace", "report", str(bad), "-o", str(tmp_path / "bad.html"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: {bad}:1: not a parlswarm trace event")
    assert not (tmp_path / "bad.html").exists()


def test_trace_summary_shows_cost_per_agent(run30: RunResult, tmp_path: Path) -> None:
    trace = run30.trace.save_jsonl(tmp_path / "run.jsonl")
    proc = _parlswarm("trace", "summary", str(trace))
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if "researcher" in line]
    assert len(rows) == N and sum("(slowest)" in r for r in rows) == 1
    assert f"cost {run30.summary.cost:.4f}" in proc.stdout
