"""``make demo`` (``python -m parlswarm.demo``): its expert part runs, scores and reports."""

from __future__ import annotations

import json

import pytest
from world_support import cache_dir, world

import parlswarm.demo as demo
from parlswarm.demo import main


def test_demo_expert_part_runs_both_modes_and_writes_reports(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world(0, tmp_path_factory)  # the search index, built once for the suite
    monkeypatch.setenv("PARLSWARM_CACHE", str(cache_dir(tmp_path_factory)))
    monkeypatch.setattr(demo, "LATENCY", 0.001)  # the demo's 0.1 s a call would add half a minute
    main(["--expert-only"])
    out = capsys.readouterr().out
    result = json.loads((cache_dir(tmp_path_factory) / "demo" / "expert" / "results.json").read_text(encoding="utf-8"))
    assert result["modes"] == ["single", "swarm"] and result["latency"] == 0.001 and result["subagent_model"] is None
    assert len(result["runs"]) == 8 and all(r["item_f1"] == 1.0 for r in result["runs"])
    assert "1. the scripted expert" in out and "2. the built-in model" not in out
    with pytest.raises(SystemExit):  # a mistyped option is refused, not ignored
        main(["--expert-onyl"])
