"""Bad input on the command line: one clear line naming what and where, and nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from parlswarm.journal import Journal, RunConfig
from parlswarm.testing.cli_process import CliProcesses


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> CliProcesses:
    return CliProcesses(tmp_path_factory.mktemp("cli"))


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "script.yaml"
    path.write_text(yaml.safe_dump(["the answer"]))
    return path


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "no-such-model"], "unknown model 'no-such-model'; known forms:"),
        (["--model", "scripted:{missing}"], "scripted model file not found:"),
        (["--model", "scripted:{not_a_list}"], "must hold a list of replies"),
        (["--model", "scripted:{not_yaml}"], "is not valid YAML/JSON"),
        (["--model", "scripted:{script}", "--mode", "crowd"], "--mode must be swarm or single, not 'crowd'"),
        (["--model", "scripted:{script}", "--tools", "kitchen-sink"], "unknown tool set 'kitchen-sink'; known: none,"),
        (["--model", "scripted:{script}", "--tools", "no.such.module:tools"], "tool set 'no.such.module:tools': cannot load"),
        (["--model", "scripted:{script}", "--max-subagents", "-1"],
         "invalid Budgets: max_subagents: Input should be greater than or equal to 0 (got -1)"),
        (["--model", "scripted:{script}", "--timeout", "0"], "invalid Budgets: max_seconds: Input should be greater than 0"),
        (["--model", "scripted:{script}", "--runs-dir", "{a_file}"], "cannot create the run folder"),
        (["--model", "scripted:{script}", "--trace", "{a_file}/trace.jsonl"], "plain-file: File exists"),
    ],
)
def test_run_rejects_bad_values_in_one_line(cli: CliProcesses, tmp_path: Path, script: Path, args: list[str], message: str) -> None:
    files = {
        "script": script,
        "missing": tmp_path / "missing.yaml",
        "not_a_list": tmp_path / "mapping.yaml",
        "not_yaml": tmp_path / "broken.yaml",
        "a_file": tmp_path / "plain-file",
    }
    files["not_a_list"].write_text("answer: 42\n")
    files["not_yaml"].write_text("- [unclosed\n")
    files["a_file"].write_text("x")
    runs = tmp_path / "runs"
    argv = [a.format(**files) for a in args]
    if "--runs-dir" not in argv:
        argv += ["--runs-dir", str(runs)]
    code, out, err = cli.run("run", "a task", "--quiet", *argv)
    assert code == 2, (out, err)
    line = one_error_line(err)
    assert line.startswith("error: ") and message in line, line
    # Nothing half-written: no run folder for a run that never started.
    assert not runs.exists() or [p for p in runs.iterdir() if (p / "journal.db").exists()] == [] or "--trace" in args


def test_typer_range_errors_name_the_option(cli: CliProcesses, script: Path) -> None:
    code, _, err = cli.run("run", "t", "--model", f"scripted:{script}", "--retries", "-1")
    assert code == 2 and "Invalid value for '--retries'" in err and "Traceback" not in err


def test_a_good_run_after_bad_ones(cli: CliProcesses, script: Path, tmp_path: Path) -> None:
    code, out, err = cli.run("run", "t", "--model", f"scripted:{script}", "--runs-dir", str(tmp_path / "runs"), "--quiet")
    assert code == 0, err
    assert out.strip() == "the answer"


@pytest.mark.parametrize(
    ("run_id", "message"),
    [("no-such-run", "no run 'no-such-run' in"), ("../../etc", "run id '../../etc' is not valid")],
)
def test_resume_rejects_unknown_and_unsafe_ids(cli: CliProcesses, tmp_path: Path, run_id: str, message: str) -> None:
    code, _, err = cli.run("resume", run_id, "--runs-dir", str(tmp_path))
    assert code == 2 and message in one_error_line(err)


def test_resume_of_a_damaged_journal_is_one_line(cli: CliProcesses, tmp_path: Path) -> None:
    Journal.create(RunConfig(task="t", model="m"), tmp_path, run_id="damaged").close("interrupted")
    for extra in tmp_path.glob("damaged/journal.db-*"):
        extra.unlink()
    (tmp_path / "damaged" / "journal.db").write_bytes(b"this is not a database" * 100)
    code, _, err = cli.run("resume", "damaged", "--runs-dir", str(tmp_path))
    assert code == 2 and "journal" in one_error_line(err)
    code, out, err = cli.run("runs", "--runs-dir", str(tmp_path))
    assert code == 0 and "damaged" in err and "Traceback" not in err


def test_resume_of_a_run_whose_model_is_gone(cli: CliProcesses, tmp_path: Path) -> None:
    Journal.create(RunConfig(task="t", model="scripted:/nowhere/script.yaml"), tmp_path, run_id="r").close("interrupted")
    code, _, err = cli.run("resume", "r", "--runs-dir", str(tmp_path))
    assert code == 2 and "scripted model file not found: /nowhere/script.yaml" in one_error_line(err)
    code, _, err = cli.run("resume", "r", "--runs-dir", str(tmp_path))  # the failed attempt left the run resumable
    assert code == 2 and "running in another process" not in err


def test_runs_of_an_empty_folder(cli: CliProcesses, tmp_path: Path) -> None:
    code, out, err = cli.run("runs", "--runs-dir", str(tmp_path / "none"))
    assert code == 0 and out == "" and "no runs in" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"not": "a task"}\n', "line 1: instance_id: Field required"),
        ("garbage\n", "line 1: not valid JSON"),
        ("[1, 2]\n", "line 1: a task line must be a JSON object"),
    ],
)
def test_task_files_of_the_wrong_shape(cli: CliProcesses, tmp_path: Path, content: str, message: str) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(content)
    (tmp_path / "gold").mkdir()
    code, _, err = cli.run("bench", "--tasks", str(tasks), "--gold", str(tmp_path / "gold"), "--out", str(tmp_path / "out"))
    assert code != 0 and "Traceback" not in err
    assert f"tasks.jsonl {message}" in err
