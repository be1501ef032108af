"""A tiny run of benchmarks/parl_cells.py so that it cannot rot: three episodes of one world task,
answered with its gold table, with one cell changed and one row dropped, and with no table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("bm25s")

from parlswarm.parl.train import world_cases  # noqa: E402  # noqa: E402
from parlswarm.scoring.table import render_markdown_table  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "parl_cells.py"


def test_each_episode_says_which_rows_and_cells_it_lost(tmp_path: Path) -> None:
    case = world_cases(31, "test", 3, 8)[0][0]
    gold = case.gold
    changed = [row[:] for row in gold.rows]
    changed[0][-1] = "9999"  # the last column is numeric in this task
    base = {"condition": "B", "seed": 0, "critical_budget": 8, "task": case.task.instance_id, "world_seed": 31,
            "rows": case.rows, "eval_world_seed": 31, "eval_split": "test", "tasks": 1}
    episodes = [
        {**base, "label": "right", "answer": render_markdown_table(gold.columns, gold.rows)},
        {**base, "label": "one cell, one row", "answer": render_markdown_table(gold.columns, changed[:-1])},
        {**base, "label": "no table", "answer": "I could not find it."},
    ]
    path = tmp_path / "results-episodes.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in episodes))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(SCRIPT), str(path), *args], capture_output=True, text=True, timeout=300)

    proc = run()
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {line.split("|")[0].strip(): [c.strip() for c in line.split("|")] for line in proc.stdout.splitlines() if " | " in line}
    n = str(len(gold.rows))
    assert rows["right"][3:] == ["1.00", n, n, n, "0", "0", "0"]
    assert rows["one cell, one row"][4:] == [n, str(len(gold.rows) - 1), str(len(gold.rows) - 1), "1", "0", "1"]
    assert rows["no table"][3] == "0.00" and rows["no table"][-1] == "- (no_table)"
    assert f"{gold.rows[0][0].lower()}, {gold.columns[-1]}: answered '9999', world {gold.rows[0][-1]!r}" in proc.stdout

    only = run("--label", "right")
    assert only.returncode == 0 and "one cell" not in only.stdout
    missing = run("--label", "nobody")
    assert missing.returncode != 0 and "no episodes labelled 'nobody'" in missing.stderr and "'right'" in missing.stderr
