"""A tiny run of benchmarks/nano_copy_probe.py on the dev samples of a tiny SFT run folder
(data prepared, no training step), so that it cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("bm25s")

from parlswarm.parl.sft import SFTRun  # noqa: E402
from parlswarm.parl.sft_config import SFTConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "nano_copy_probe.py"


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SFT run folder with data.pt and its initial model: the built-in nano model, dev samples only."""
    cfg = SFTConfig.load(ROOT / "configs" / "sft-tiny.yaml")
    cfg.out_dir = tmp_path_factory.mktemp("sft")
    cfg.init = ROOT / "src" / "parlswarm" / "weights" / "nano"  # no tokenizer to train
    cfg.data = cfg.data.model_copy(update={"world_seeds": [], "orchestrator_samples": 4, "subagent_samples": 4, "dev_samples": 8})
    _, data = SFTRun(cfg).prepare()
    assert len(data.dev) >= 3
    return Path(cfg.out_dir)


def test_counts_every_target_token_and_shows_the_first_turns(sft_run: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--model", str(sft_run / "initial"), "--data", str(sft_run), "--samples", "3", "--show", "2"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dev = torch.load(sft_run / "data.pt", weights_only=False)["dev"][:3]
    shown = re.findall(r"^--- (\w+) turn:$", proc.stdout, flags=re.MULTILINE)
    assert shown == [s["kind"] for s in dev[:2]]
    counts = {kind: (int(wrong), int(total)) for kind, wrong, total in
              re.findall(r"^(digit|other) targets: (\d+) of (\d+) wrong \(\d+\.\d%\)$", proc.stdout, flags=re.MULTILINE)}
    assert set(counts) == {"digit", "other"}
    assert all(wrong <= total for wrong, total in counts.values())
    # Every target token after the first is predicted once (the first has no context).
    assert sum(total for _, total in counts.values()) == sum(sum(s["mask"][1:]) for s in dev)
    assert counts["other"][1] > 0
