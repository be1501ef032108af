"""Make docs/img/report.png: the report of a 12-country task, drawn by headless Chromium.

With the offline world installed (``.[world]``) it runs the scripted expert as a swarm on a
12-row World Factbook task (South America: fertility rate, electrification, area), one
sub-agent per place, with 0.1 s of emulated model latency per call so that the wall-clock
axis looks like a remote model's. Without the world it falls back to a scripted fan-out of
12 countries with sub-agents of different lengths (and says so).

    .venv/bin/python docs/img/report_screenshot.py [--out docs/img/report.png] [--html report.html]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from parlswarm.trace.recorder import Trace
from parlswarm.trace.report import write_report

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
TASK_ID = "world_dev_019"  # 12 rows once places without a value are left out
LATENCY = 0.1


def world_run() -> Trace:
    from parlswarm import Budgets, Swarm
    from parlswarm.bench import LatencyModel
    from parlswarm.models import load_model
    from parlswarm.world.tasks import make_tasks
    from parlswarm.world.tools import world_tools
    from parlswarm.world.world import World

    world = World.load(0)
    task = next(t for t in make_tasks("all", world.factbook) if t.instance_id == TASK_ID)
    print(f"{TASK_ID}: {len(task.rows)} gold rows; scripted expert, one place per sub-agent, {LATENCY}s per call")
    swarm = Swarm(LatencyModel(load_model("expert:rows=1"), LATENCY), tools=world_tools(world), budgets=Budgets())
    return asyncio.run(swarm.run(task.query)).trace


def scripted_run() -> Trace:
    from parlswarm.testing.scripted_runs import fanout_swarm

    countries = ["France", "Japan", "Peru", "Brazil", "Kenya", "Norway", "India", "Chile", "Egypt", "Canada",
                 "Vietnam", "Morocco"]
    lengths = [2, 3, 2, 7, 3, 2, 4, 3, 2, 3, 5, 2]
    print("offline world not available: scripted fan-out of 12 countries")
    swarm = fanout_swarm(countries, lengths, latency=LATENCY)
    return swarm.run_sync("For each of 12 countries, find the capital, population and area.").trace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("report.png"))
    parser.add_argument("--html", type=Path, default=None, help="keep the HTML report here")
    args = parser.parse_args()
    try:
        trace = world_run()
    except ImportError:
        trace = scripted_run()
    html = args.html or Path(tempfile.mkdtemp()) / "report.html"
    write_report(trace.events, html, title="A 12-row task (South America, World Factbook), scripted expert swarm")

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
        page.goto(html.resolve().as_uri())
        page.wait_for_selector("body[data-ready='1']")
        table_top = page.locator("#agents").bounding_box()
        height = int(table_top["y"] + 330) if table_top else 1100  # timeline and the top of the table
        page.screenshot(path=str(args.out), full_page=True, clip={"x": 0, "y": 0, "width": 1400, "height": height})
        browser.close()
    print(f"wrote {args.out} (report: {html})")


if __name__ == "__main__":
    main()
