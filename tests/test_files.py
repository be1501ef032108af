"""write_whole: a file is written whole or left as it was."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from parlswarm import files
from parlswarm.files import write_whole


def test_writes_text_and_bytes_into_new_folders(tmp_path: Path) -> None:
    text = tmp_path / "a" / "b" / "report.md"
    assert write_whole(text, "naïve\n") == text
    assert text.read_bytes() == "naïve\n".encode()
    assert write_whole(str(tmp_path / "blob.bin"), b"\x00\xff") == tmp_path / "blob.bin"
    assert (tmp_path / "blob.bin").read_bytes() == b"\x00\xff"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["blob.bin", "report.md"]


def test_a_write_that_fails_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "results.json"
    write_whole(path, "old")

    def no_rename(src: str, dst: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(files.os, "replace", no_rename)
    with pytest.raises(OSError, match="disk gone"):
        write_whole(path, "new")
    monkeypatch.setattr(files.os, "replace", os.replace)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
