"""``parlswarm eval`` end to end on the WideSearch-format fixture in tests/data/widesearch/."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from parlswarm.cli import main
from parlswarm.scoring import load_gold, load_tasks, render_markdown_table

DATA = Path(__file__).parent / "data" / "widesearch"
TASKS = DATA / "widesearch.jsonl"
GOLD = DATA / "widesearch_gold"
IDS = ["ws_en_901", "ws_zh_902", "ws_en_903"]


def gold_answer(instance_id: str, gold_dir: Path = GOLD) -> str:
    g = load_gold(gold_dir, instance_id)
    return "Here is the table you asked for.\n\n" + render_markdown_table(g.columns, g.rows)


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["parlswarm", "eval", *args])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exit_:
        main()
    out, err = capsys.readouterr()
    return int(exit_.value.code or 0), out, err


def test_gold_as_response_from_a_folder_scores_100(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    answers = tmp_path / "answers"
    answers.mkdir()
    for i in IDS:
        (answers / f"{i}.md").write_text(gold_answer(i), encoding="utf-8")
    report_path = tmp_path / "report.json"
    code, out, err = run_cli(
        ["--tasks", str(TASKS), "--gold", str(GOLD), "--responses", str(answers), "--out", str(report_path)], monkeypatch, capsys
    )
    assert code == 0, err
    for i in IDS:
        assert i in out
    assert out.count("100.0") == 4 * 3  # Item-F1, Row-F1 and success for 3 tasks and for all
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["trials"] == 1 and report["errors"] == []
    for name in ("success", "row_precision", "row_recall", "row_f1", "item_precision", "item_recall", "item_f1"):
        assert report["summary"]["metrics"][name]["avg"] == 1.0, name
    assert len(report["scores"]) == 3


def test_trials_avg_and_max(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # ws_en_901: trial 0 is the gold (Item-F1 1.0), trial 1 has 3 of 5 rows (Item-F1 0.75),
    # trial 2 is missing (scored 0). The other tasks: trial 0 only; trials 1 and 2 score 0.
    g = load_gold(GOLD, "ws_en_901")
    lines = [{"instance_id": i, "response": gold_answer(i)} for i in IDS]
    lines.append({"instance_id": "ws_en_901", "trial": 1, "response": render_markdown_table(g.columns, g.rows[:3])})
    path = tmp_path / "responses.jsonl"
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    report_path = tmp_path / "report.json"
    code, out, err = run_cli(
        ["--tasks", str(TASKS), "--gold", str(GOLD), "--responses", str(path), "--trials", "3", "--out", str(report_path)],
        monkeypatch,
        capsys,
    )
    assert code == 0, err
    assert "avg@3 / max@3" in out
    report = json.loads(report_path.read_text(encoding="utf-8"))
    f1 = report["summary"]["metrics"]["item_f1"]
    # ws_en_901: avg (1 + 0.75 + 0)/3 = 0.5833, max 1. The others: avg 1/3, max 1.
    # Over tasks: Avg@3 = (0.5833 + 0.3333 + 0.3333)/3 = 0.4167; Max@3 = 1.
    assert round(f1["avg"], 4) == 0.4167 and f1["max"] == 1.0
    ok = report["summary"]["metrics"]["success"]
    assert round(ok["avg"], 4) == 0.3333 and ok["max"] == 1.0  # Avg@3 1/3, Pass@3 1
    assert "58.3 / 100.0" in out
    assert "no response (task ws_en_901, trial 2): no response" in err


def test_bad_input_is_named_and_the_other_tasks_are_scored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gold_dir = tmp_path / "gold"
    shutil.copytree(GOLD, gold_dir)
    (gold_dir / "ws_en_903.csv").unlink()  # missing gold CSV
    tasks = tmp_path / "tasks.jsonl"
    lines = TASKS.read_text(encoding="utf-8").splitlines()
    tasks.write_text("\n".join([lines[0], '{"instance_id": "ws_broken", "query": "x", "evaluation": "{oops"}', lines[1], lines[2]]) + "\n", encoding="utf-8")
    answers = tmp_path / "answers"
    answers.mkdir()
    (answers / "ws_en_901.md").write_text(gold_answer("ws_en_901"), encoding="utf-8")
    (answers / "ws_zh_902.txt").write_text("抱歉，我没有找到这些信息。", encoding="utf-8")  # no table
    (answers / "ws_en_903.md").write_text(gold_answer("ws_en_903"), encoding="utf-8")
    report_path = tmp_path / "report.json"
    code, out, err = run_cli(
        ["--tasks", str(tasks), "--gold", str(gold_dir), "--responses", str(answers), "--out", str(report_path)], monkeypatch, capsys
    )
    assert code == 1
    assert f"{tasks} line 2 (task ws_broken): evaluation: evaluation is not valid JSON" in err
    assert f"{gold_dir / 'ws_en_903.csv'} (task ws_en_903): gold table for task ws_en_903 not found" in err
    assert f"{answers / 'ws_zh_902.txt'} (task ws_zh_902, trial 0): no markdown table in the response" in err
    report = json.loads(report_path.read_text(encoding="utf-8"))
    scored = {s["instance_id"]: s for s in report["scores"]}
    assert set(scored) == {"ws_en_901", "ws_zh_902"}
    assert scored["ws_en_901"]["item_f1"] == 1.0 and scored["ws_zh_902"]["error_kind"] == "no_table"
    assert report["skipped_tasks"] == ["ws_en_903"]
    # Mean over the two scored tasks: (1 + 0) / 2.
    assert report["summary"]["metrics"]["item_f1"]["avg"] == 0.5
    assert "no table" in out


def test_missing_task_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(
        ["--tasks", str(tmp_path / "none.jsonl"), "--gold", str(GOLD), "--responses", str(tmp_path)], monkeypatch, capsys
    )
    assert code == 2
    assert err.strip() == f"error: task file not found: {tmp_path / 'none.jsonl'}"


def test_missing_responses_score_zero_or_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "responses.jsonl"
    path.write_text(
        json.dumps({"instance_id": "ws_en_903", "response": gold_answer("ws_en_903")}) + "\n"
        + json.dumps({"instance_id": "ws_unknown", "response": "x"}) + "\n",
        encoding="utf-8",
    )
    code, out, err = run_cli(["--tasks", str(TASKS), "--gold", str(GOLD), "--responses", str(path)], monkeypatch, capsys)
    assert code == 0
    assert "1 response task id(s) are not in" in err and "ws_unknown" in err
    assert "no response" in out  # ws_en_901 and ws_zh_902 score 0: a missing answer is a wrong one
    report_path = tmp_path / "r.json"
    code, out, err = run_cli(
        ["--tasks", str(TASKS), "--gold", str(GOLD), "--responses", str(path), "--skip-missing", "--out", str(report_path)],
        monkeypatch,
        capsys,
    )
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert [s["instance_id"] for s in report["scores"]] == ["ws_en_903"]
    assert report["summary"]["metrics"]["item_f1"]["avg"] == 1.0


def test_all_fixture_tasks_load() -> None:
    assert [t.instance_id for t in load_tasks(TASKS)] == IDS


def test_judge_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # A renamed column fails the task without a judge and is mapped with one (a scripted
    # judge whose every reply maps "capitalcity" to "capital").
    g = load_gold(GOLD, "ws_en_901")
    header = ["Country", "Capital city", "Population", "Area km2", "Independence", "Website"]
    path = tmp_path / "responses.jsonl"
    path.write_text(json.dumps({"instance_id": "ws_en_901", "response": render_markdown_table(header, g.rows)}) + "\n", encoding="utf-8")
    judge = tmp_path / "judge.yaml"
    judge.write_text(json.dumps(['```json\n{"capitalcity": "capital"}\n```']), encoding="utf-8")
    args = ["--tasks", str(TASKS), "--gold", str(GOLD), "--responses", str(path), "--skip-missing"]
    code, out, err = run_cli([*args, "--out", str(tmp_path / "a.json")], monkeypatch, capsys)
    assert code == 0 and "columns differ" in out and "no judge to map column names" in err
    assert json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))["summary"]["metrics"]["item_f1"]["avg"] == 0.0
    code, out, err = run_cli([*args, "--judge", f"scripted:{judge}", "--out", str(tmp_path / "b.json")], monkeypatch, capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "b.json").read_text(encoding="utf-8"))
    assert report["judge"] == "scripted:judge.yaml"
    assert report["summary"]["metrics"]["item_f1"]["avg"] == 1.0
    assert report["scores"][0]["column_alignments"] == [{"column": None, "response": "capitalcity", "gold": "capital", "by": "judge"}]
