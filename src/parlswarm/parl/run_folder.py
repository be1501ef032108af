"""What a PARL run keeps in its folder, and how it goes on from it.

``config.yaml`` (the run's :class:`~parlswarm.parl.parl_config.ParlConfig`), ``git_commit`` (the
code it started with), ``starts.jsonl`` (a line each time it starts or resumes with steps to
do: the step, the code and the machine, which decides whether a replay can be exact),
``warm_start/parlswarm.json`` (the settings every checkpoint is saved with), the logs
``metrics.jsonl`` (a line of scalars a step), ``episodes.jsonl`` (a line an episode) and
``eval.jsonl`` (a line a greedy evaluation), TensorBoard event files, and
``checkpoints/step-NNNNN/`` with ``checkpoints/latest`` naming the newest. The logs hold
exactly the steps the newest checkpoint's weights went through (:func:`trim_log`).
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import yaml

from parlswarm.files import write_whole
from parlswarm.models.local import LocalModel
from parlswarm.models.local_settings import LocalSettings, read_settings
from parlswarm.models.local_specs import is_builtin, weights_digest
from parlswarm.models.nano import write_settings
from parlswarm.parl.parl_config import ParlConfig
from parlswarm.provenance import git_changes, git_commit, machine

log = logging.getLogger(__name__)

COMMIT_FILE = "git_commit"
STARTS_FILE = "starts.jsonl"


def record_start(out: Path, step: int, replay_tolerance: float) -> None:
    """Append to ``starts.jsonl`` that the run in ``out`` goes on from ``step`` here and now."""
    line = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "from_step": step,
        "git_commit": git_commit(),
        "git_changes": git_changes(),
        "replay_tolerance": replay_tolerance,
        "machine": machine(),
    }
    with (out / STARTS_FILE).open("a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


def checkpoint_manifest(out: Path, step: int) -> dict[str, Any]:
    """What made the checkpoint at ``step`` of the run in ``out``: its config, the commit the run
    started at, the warm start's digest and the step's training figures (``parlswarm train ship``
    carries it into a shipped model's manifest)."""
    config = yaml.safe_load((out / "config.yaml").read_text(encoding="utf-8"))
    commit = out / COMMIT_FILE
    settings = read_settings(out / "warm_start")
    metrics = read_log(out / "metrics.jsonl")
    at_step = next((m for m in metrics if m.get("step") == step), None)
    manifest: dict[str, Any] = {
        "model": f"PARL orchestrator, step {step} of {config.get('steps')}"
        + (" (LoRA adapter on its warm start)" if config.get("lora") else ""),
        "config": config,
        "git_commit": commit.read_text(encoding="utf-8").strip() or None if commit.is_file() else None,
        "steps": step,
        "train": at_step,
    }
    if settings is not None and settings.base_digest:
        manifest["init_digest"] = settings.base_digest
    return manifest


def save_checkpoint(out: Path, step: int, policy: LocalModel, optimizer: torch.optim.Optimizer, rng: random.Random) -> Path:
    folder = out / "checkpoints" / f"step-{step:05d}"
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    policy.model.save_pretrained(tmp)
    policy.tokenizer.save_pretrained(tmp)
    settings = out / "warm_start" / "parlswarm.json"
    if settings.is_file():
        shutil.copy(settings, tmp / "parlswarm.json")
    (tmp / "manifest.json").write_text(json.dumps(checkpoint_manifest(out, step), indent=2) + "\n", encoding="utf-8")
    torch.save({"step": step, "optimizer": optimizer.state_dict(), "rng": rng.getstate(),
                "torch_rng": torch.get_rng_state()}, tmp / "trainer_state.pt")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)  # a checkpoint is complete or absent, never half-written
    (out / "checkpoints" / "latest").write_text(folder.name + "\n", encoding="utf-8")
    return folder


def prune_checkpoints(out: Path, keep: int | None) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints of the run in ``out`` (None: delete none).

    The one ``latest`` names is always kept; unfinished ``.tmp`` folders are left to
    :func:`save_checkpoint`, which clears them. Returns what was deleted."""
    if keep is None:
        return []
    folder = out / "checkpoints"
    finished = sorted(p for p in folder.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp"))
    latest = latest_checkpoint(out)
    doomed = [p for p in finished[:-keep] if latest is None or p.resolve() != latest.resolve()]
    for p in doomed:
        shutil.rmtree(p)
    return doomed


def latest_checkpoint(out: Path) -> Path | None:
    marker = out / "checkpoints" / "latest"
    if not marker.is_file():
        return None
    folder = out / "checkpoints" / marker.read_text(encoding="utf-8").strip()
    return folder if (folder / "trainer_state.pt").is_file() else None

def record_warm_start(out: Path, config: ParlConfig, warm_start: Path, resume: Path | None) -> None:
    """Write ``out/warm_start/parlswarm.json``: the settings every checkpoint is saved with, the
    warm start's, and under LoRA the warm start as the base the checkpoints' adapters apply to,
    with the digest of its weights. A run that resumes keeps what it recorded and must find the
    same weights; one that starts over (no checkpoint: none yet, or the folder outlived its
    checkpoints) records its warm start afresh."""
    folder = out / "warm_start"
    spec = config.policy if is_builtin(config.policy) else str(warm_start)  # a shipped one resolves on any install
    if resume is not None:
        recorded = read_settings(folder)
        if config.lora is not None and recorded is not None and recorded.base_digest:
            now = weights_digest(spec)
            if now != recorded.base_digest:
                raise ValueError(
                    f"{out} resumes from {resume}, trained on a warm start {spec} whose weights had sha256 "
                    f"{recorded.base_digest[:12]}; {spec} now holds other weights ({now[:12]}): restore that warm start, "
                    f"or start a new run in another out_dir")
        return
    folder.mkdir(exist_ok=True)
    if config.lora is not None:
        base = read_settings(warm_start) or LocalSettings()
        write_settings(folder, base.model_copy(update={"base": spec, "base_digest": weights_digest(spec)}))
    elif (warm_start / "parlswarm.json").is_file():
        shutil.copy(warm_start / "parlswarm.json", folder / "parlswarm.json")


LOGS = ("metrics.jsonl", "episodes.jsonl", "eval.jsonl", "generations.jsonl")


def dropped_log(path: Path) -> Path:
    """Where :func:`trim_log` keeps the lines it cuts from the log ``path``: ``metrics.dropped.jsonl`` beside ``metrics.jsonl``."""
    return path.with_name(path.name.removesuffix(".jsonl") + ".dropped.jsonl")


def trim_log(out: Path, step: int) -> list[int]:
    """Cut the lines of ``metrics.jsonl``, ``episodes.jsonl``, ``eval.jsonl`` and
    ``generations.jsonl`` (:mod:`parlswarm.parl.replay`) after ``step``,
    the step the run goes on from, so that the logs hold exactly the steps its weights went
    through: a run killed between writing a step and saving its checkpoint, or a folder kept
    (in git, say) whose checkpoints are gone, does those steps again. Returns the steps cut.

    Nothing is lost: the cut lines are appended to ``NAME.dropped.jsonl`` beside each log
    (:func:`dropped_log`) before the log is rewritten, so a step run again can be set beside
    its first run."""
    dropped: set[int] = set()
    for name in LOGS:
        records = read_log(out / name)
        kept = [r for r in records if r["step"] <= step]
        cut = [r for r in records if r["step"] > step]
        if cut:
            dropped.update(r["step"] for r in cut)
            with dropped_log(out / name).open("a", encoding="utf-8") as f:
                f.write("".join(json.dumps(r) + "\n" for r in cut))
            write_whole(out / name, "".join(json.dumps(r) + "\n" for r in kept))  # a cut log is never half a log
    if dropped:
        log.warning("%s: steps %s were logged but their checkpoint is gone; they run again (their first lines are kept in "
                    "*.dropped.jsonl)", out, sorted(dropped))
    return sorted(dropped)


def read_log(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a run's log (:data:`LOGS`, or one's ``*.dropped.jsonl``); none if it wrote none yet."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.is_file() else []


def logged_eval_steps(out: Path) -> set[int]:
    """The steps ``eval.jsonl`` of the run in ``out`` holds an evaluation of."""
    return {e["step"] for e in read_log(out / "eval.jsonl")}


def logged_steps(out: Path) -> int:
    """How many steps ``metrics.jsonl`` of the run in ``out`` holds (0 when it has none)."""
    return len(read_log(out / "metrics.jsonl"))


class ScalarLog:
    """JSONL always; TensorBoard event files too when ``tensorboard`` is installed."""

    def __init__(self, out: Path) -> None:
        self.jsonl = (out / "metrics.jsonl").open("a", encoding="utf-8")
        self.episodes = (out / "episodes.jsonl").open("a", encoding="utf-8")
        self.generations = (out / "generations.jsonl").open("a", encoding="utf-8")
        self.evals = out / "eval.jsonl"
        self.tb: Any = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tensorboard"))
        except ImportError:
            log.info("tensorboard not installed: scalars go to metrics.jsonl only")

    def write(self, step: int, scalars: dict[str, float], episodes: Sequence[dict[str, Any]],
              generations: Sequence[dict[str, Any]] = ()) -> None:
        self.jsonl.write(json.dumps({"step": step, **scalars}) + "\n")
        self.jsonl.flush()
        for log_file, lines in ((self.episodes, episodes), (self.generations, generations)):
            log_file.write("".join(json.dumps({"step": step, **line}) + "\n" for line in lines))
            log_file.flush()
        if self.tb is not None:
            for k, v in scalars.items():
                self.tb.add_scalar(k, v, step)
            self.tb.flush()

    def write_eval(self, row: dict[str, Any]) -> None:
        with self.evals.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k in ("item_f1", "success", "critical_steps", "subagents", "parallel_share"):
                self.tb.add_scalar(f"eval/{k}", row[k], row["step"])
            self.tb.flush()

    def close(self) -> None:
        self.jsonl.close()
        self.episodes.close()
        self.generations.close()
        if self.tb is not None:
            self.tb.close()
