"""parlswarm.provenance: the commit a run started from, and how the tree differed from it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from parlswarm.provenance import git_changes, git_commit


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_git_changes_name_the_uncommitted_files_and_none_outside_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "--allow-empty", "-m", "empty")
    (repo / ".gitignore").write_text("runs/\n")
    (repo / "notes.py").write_text("x = 1\n")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "code")
    monkeypatch.chdir(repo)
    assert git_changes() == [] and git_commit()  # a clean tree: the commit says it all
    (repo / "notes.py").write_text("x = 2\n")  # edited, not committed
    (repo / "new.yaml").write_text("a: 1\n")  # not yet added
    (repo / "runs").mkdir()
    (repo / "runs" / "log.txt").write_text("ignored\n")
    assert sorted(git_changes() or []) == [" M notes.py", "?? new.yaml"]
    monkeypatch.chdir(tmp_path)  # no repository here
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert git_changes() is None and git_commit() is None
