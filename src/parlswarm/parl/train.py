"""The PARL training loop: GRPO on the orchestrator, sub-agents frozen, budgets in critical steps.

One step, top to bottom:

1. draw ``tasks_per_step`` training tasks, each in a random training world seed;
2. roll out ``group_size`` episodes of each through the runtime (orchestrator sampling at
   ``temperature``, frozen sub-agents decoding greedily and cached);
3. reward each episode (:mod:`parlswarm.parl.rewards`, at training progress e = step/steps)
   and normalise rewards within each group into advantages;
4. update the orchestrator with the clipped GRPO loss over the tokens it generated;
5. log every reward term and episode statistic (JSONL and TensorBoard), checkpoint.

Resuming reloads the latest checkpoint (weights, optimiser, step, random state) and goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field

from parlswarm.config import load_yaml_model
from parlswarm.files import write_whole
from parlswarm.models.adapter import LoraSettings, add_adapter, has_adapter, load_adapter, trainable
from parlswarm.models.base import Model
from parlswarm.models.cached import CachedModel
from parlswarm.models.local import LocalModel
from parlswarm.models.local_settings import LocalSettings, Sampling, read_settings
from parlswarm.models.local_specs import is_builtin, local_path, weights_digest
from parlswarm.models.nano import write_settings
from parlswarm.parl.grpo import (
    Sample,
    batch_tensors,
    group_advantages,
    grpo_loss,
    keep_old_logprobs,
    pad_old_logprobs,
    token_logprobs,
)
from parlswarm.parl.notes import NoteStyle
from parlswarm.parl.rewards import RewardConfig, reward
from parlswarm.parl.rollout import Episode, TaskCase, expert_prefix, rollout_groups
from parlswarm.provenance import git_commit
from parlswarm.tools import Toolset
from parlswarm.types import Budgets

log = logging.getLogger(__name__)


class ParlConfig(BaseModel):
    """Everything a PARL run depends on (``configs/parl-*.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    policy: str = Field("builtin", description="warm start: 'builtin', 'builtin:NAME' or a save_pretrained folder (whole weights or a LoRA adapter)")
    subagent: str = Field("same", description="frozen sub-agents: 'same' (a frozen copy of the warm start), 'expert[:OPTIONS]', or a folder")
    world_seeds: list[int] = Field(default_factory=lambda: [11, 12, 13, 14], min_length=1)
    split: Literal["train", "dev", "test"] = "train"
    min_rows: int = Field(3, ge=1)
    max_rows: int | None = 12
    task_ids: list[str] | None = Field(None, description="train on these tasks only (instance ids of the split)")
    steps: int = Field(40, ge=1)
    tasks_per_step: int = Field(2, ge=1)
    group_size: int = Field(4, ge=2)
    lr: float = Field(1e-5, gt=0)
    clip: float = Field(0.2, gt=0)
    kl_coef: float = Field(0.0, ge=0)
    ppo_epochs: int = Field(1, ge=1)
    minibatch: int = Field(8, ge=1)
    max_samples_per_step: int | None = Field(
        None, ge=1, description="train on a uniform random subset of the step's orchestrator turns (compute cap)"
    )
    max_grad_norm: float = 1.0
    lora: LoraSettings | None = Field(
        None, description="train a new LoRA adapter on the warm start instead of all its weights; checkpoints hold the adapter"
    )
    temperature: float = Field(1.0, gt=0)
    gradient_checkpointing: bool = Field(
        True,
        description="recompute each layer's activations in the backward pass instead of keeping them: about halves the "
        "update's memory on SmolLM2-135M turns of 4,000 tokens for 13 % more time (benchmarks/grpo_memory.py)",
    )
    max_new_tokens: int = Field(256, ge=1)
    continuous_batching: bool = Field(
        False,
        description="rollouts decode with continuous batching: a turn joins the rows already decoding at the next token "
        "and goes back as soon as it ends (LocalModel(continuous=True)); each request samples from its own seeded stream "
        "either way, so the choice changes timing, not draws",
    )
    expert_prefix: bool = Field(
        False,
        description="the scripted expert plays the orchestrator's turns until it knows the places (search, region index); "
        "the policy plays from the decision point on, and only its turns are trained (parlswarm.parl.rollout)",
    )
    prefix_notes: NoteStyle = Field("labelled", description="the notes the expert prefix writes: the warm start's data.note_style")
    budgets: Budgets = Field(
        default_factory=lambda: Budgets(max_critical_steps=24, max_orchestrator_steps=24, max_subagent_steps=16, max_tool_calls=400)
    )
    reward: RewardConfig = Field(default_factory=RewardConfig)
    seed: int = 0
    # One thread: decoding is many small ops, and torch's thread pool spins badly when the
    # cores are shared (measured 24x slower batched decoding with 2 threads on 2 busy cores).
    torch_threads: int = Field(1, ge=1)
    checkpoint_every: int = Field(10, ge=1)
    eval_every: int | None = Field(
        None, ge=1,
        description="greedy evaluation every N steps, and before the first and after the last (eval.jsonl): a learning "
        "curve that does not hang on one sampled task a step, and a split to choose a checkpoint on that is not the "
        "reported one. Off by default: on 2 CPU cores 8 greedy SmolLM2 episodes took 5 minutes (delegating) to 32 "
        "(mostly serial, each turn decoding long notes at about 0.1 s a token)",
    )
    eval_world_seed: int = Field(78, description="the evaluation's world: not a training world, not the reported one (77)")
    eval_split: Literal["train", "dev", "test"] = "dev"
    eval_tasks: int = Field(8, ge=1, description="the first N tasks of the split within min_rows–max_rows")
    # The newest N checkpoints stay, older ones are deleted; None keeps all. A SmolLM2 + LoRA
    # checkpoint is 60 MB (the optimiser state 39 MB of it), so a 12-step run kept 720 MB.
    keep_checkpoints: int | None = Field(None, ge=1)
    out_dir: str = "runs/parl"

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> ParlConfig:
        return load_yaml_model(cls, path, "PARL config", overrides)


# --- setup ---------------------------------------------------------------------------------


def _policy_path(spec: str) -> Path:
    path = local_path(spec)
    if not ((path / "config.json").is_file() or has_adapter(path)):
        raise FileNotFoundError(f"PARL warm start not found: {path} has neither config.json nor adapter_config.json")
    return path


def load_policy(config: ParlConfig, warm_start: Path, resume: Path | None) -> LocalModel:
    """The trainable orchestrator: the warm start or the latest checkpoint, with its own adapter under LoRA."""
    sampling = Sampling(temperature=config.temperature, max_new_tokens=config.max_new_tokens, seed=config.seed)
    if config.lora is None:
        return LocalModel.from_pretrained(resume or warm_start, name="orchestrator (PARL)", sampling=sampling,
                                          continuous=config.continuous_batching)
    policy = LocalModel.from_pretrained(warm_start, name="orchestrator (PARL)", sampling=sampling,
                                        continuous=config.continuous_batching)
    policy.model = load_adapter(policy.model, resume, trainable=True) if resume else add_adapter(policy.model, config.lora)
    return policy


def checkpoint_activations(model: torch.nn.Module) -> None:
    """Recompute each layer's activations in the backward pass instead of keeping them."""
    # Non-reentrant: under LoRA no input needs a gradient, which the reentrant form requires.
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # its name from transformers 5.x on
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def load_subagent(config: ParlConfig, warm_start: Path) -> tuple[Model, torch.nn.Module | None]:
    """The frozen sub-agent model, and its torch module when it is the warm start (the KL reference)."""
    if config.subagent == "expert" or config.subagent.startswith("expert:"):
        from parlswarm.models import load_model

        return load_model(config.subagent), None  # the scripted expert, e.g. expert:find
    path = warm_start if config.subagent == "same" else _policy_path(config.subagent)
    frozen = LocalModel.from_pretrained(
        path, name=f"frozen sub-agent ({path.name})", sampling=Sampling(temperature=0.0, max_new_tokens=config.max_new_tokens)
    )
    for p in frozen.model.parameters():
        p.requires_grad_(False)
    cached = CachedModel(frozen, namespace=str(path.resolve()))
    return cached, frozen.model if path == warm_start else None


def world_cases(seed: int, split: str, min_rows: int, max_rows: int | None) -> tuple[list[TaskCase], Toolset]:
    """The tasks of ``split`` in world ``seed`` with ``min_rows``–``max_rows`` rows, and that world's tools."""
    from parlswarm.world.factbook import Factbook
    from parlswarm.world.tasks import make_tasks
    from parlswarm.world.tools import world_tools
    from parlswarm.world.world import World

    real = Factbook.load()
    world = World.load(seed, base=real)
    cases = [TaskCase.from_world(t, seed) for t in make_tasks(split, world.factbook, real, seed)]  # type: ignore[arg-type]
    return [c for c in cases if c.rows >= min_rows and (max_rows is None or c.rows <= max_rows)], world_tools(world)


def load_task_pool(config: ParlConfig) -> tuple[dict[int, list[TaskCase]], dict[int, Toolset]]:
    """Tasks of the split within the row range, per training world seed, and each world's tools."""
    pool: dict[int, list[TaskCase]] = {}
    tools: dict[int, Toolset] = {}
    for seed in config.world_seeds:
        cases, tools[seed] = world_cases(seed, config.split, config.min_rows, config.max_rows)
        pool[seed] = [c for c in cases if config.task_ids is None or c.task.instance_id in config.task_ids]
        if not pool[seed]:
            raise ValueError(f"no {config.split} tasks with {config.min_rows}–{config.max_rows} rows in world seed {seed}")
    return pool, tools


class StepEvaluation:
    """The greedy evaluation a run makes every ``eval_every`` steps (see ParlConfig): the same
    cases each time, the policy decoding greedily, the run's sub-agents, prefix and budgets."""

    def __init__(self, config: ParlConfig, subagent: Model, prefix: Model | None) -> None:
        cases, self.tools = world_cases(config.eval_world_seed, config.eval_split, config.min_rows, config.max_rows)
        self.cases = cases[: config.eval_tasks]
        if not self.cases:
            raise ValueError(f"no {config.eval_split} tasks with {config.min_rows}–{config.max_rows} rows in world seed "
                             f"{config.eval_world_seed} to evaluate on (eval_world_seed, eval_split)")
        self.config, self.subagent, self.prefix = config, subagent, prefix

    def due(self, step: int) -> bool:
        every = self.config.eval_every
        return every is not None and (step == 0 or step % every == 0 or step == self.config.steps)

    def run(self, policy: LocalModel, step: int) -> dict[str, Any]:
        """One evaluation of ``policy`` as it is after ``step`` steps; its sampling is restored after."""
        from parlswarm.parl.evaluate import evaluate

        sampling = policy.sampling
        policy.sampling = Sampling(temperature=0.0, max_new_tokens=self.config.max_new_tokens)
        try:
            summary, _ = evaluate(f"step {step}", policy, self.subagent, self.tools, self.cases, self.config.budgets,
                                  prefix=self.prefix)
        finally:
            policy.sampling = sampling
        return {"step": step, "world_seed": self.config.eval_world_seed, "split": self.config.eval_split,
                "tasks": len(self.cases), **summary.model_dump(exclude={"label", "orchestrator", "subagent"})}


# --- one update ----------------------------------------------------------------------------


def turn_tokens(samples: Sequence[Sample]) -> dict[str, float]:
    """How much the policy read and wrote in one step's turns (all of them, before any subset is
    drawn): where a slow step's time went, generation (completion tokens) or reading (prompt)."""
    prompt = [len(s.prompt_ids) for s in samples]
    completion = [len(s.completion_ids) for s in samples]
    return {
        "train/completion_tokens": float(sum(completion)),
        "train/prompt_tokens_mean": sum(prompt) / len(prompt) if prompt else 0.0,
        "train/longest_turn_tokens": float(max((p + c for p, c in zip(prompt, completion)), default=0)),
    }


def update(
    policy: torch.nn.Module,
    reference: torch.nn.Module | None,
    optimizer: torch.optim.Optimizer,
    samples: Sequence[Sample],
    pad_id: int,
    config: ParlConfig,
) -> dict[str, float]:
    """``ppo_epochs`` passes of the clipped GRPO loss over ``samples``; returns mean loss parts."""
    # Log-probabilities under the policy that sampled (this step's weights, before any update).
    with torch.no_grad():
        for i in range(0, len(samples), config.minibatch):
            chunk = samples[i : i + config.minibatch]
            ids, attention, mask = batch_tensors(chunk, pad_id)
            keep_old_logprobs(chunk, token_logprobs(policy, ids, attention, config.temperature, wanted=mask))
    parts: dict[str, list[float]] = {"loss": [], "policy": [], "kl": [], "clip_fraction": [], "ratio": [], "grad_norm": []}
    order = list(range(len(samples)))
    rng = random.Random(config.seed)
    for _ in range(config.ppo_epochs):
        rng.shuffle(order)
        for i in range(0, len(order), config.minibatch):
            chunk = [samples[j] for j in order[i : i + config.minibatch]]
            optimizer.zero_grad(set_to_none=True)
            # One row's graph at a time, gradients accumulated: the loss is a mean over rows, so
            # Σ loss_row / rows is the minibatch's loss; the diagnostics are token-weighted as in
            # grpo_loss. A turn thousands of tokens long holds gigabytes of graph on its own.
            loss, tokens, weighted = 0.0, 0.0, {"policy": 0.0, "kl": 0.0, "clip_fraction": 0.0, "ratio": 0.0}
            for s in chunk:
                ids, attention, mask = batch_tensors([s], pad_id)
                n = float(mask.sum())
                if n == 0:  # nothing generated: adds 0 to the mean, and has no graph to go back through
                    continue
                ref = None
                if reference is not None and config.kl_coef > 0:
                    with torch.no_grad():
                        ref = token_logprobs(reference, ids, attention, config.temperature, wanted=mask)
                logp = token_logprobs(policy, ids, attention, config.temperature, wanted=mask)
                old = pad_old_logprobs([s], ids.shape[1])
                out = grpo_loss(logp, old, torch.tensor([s.advantage]), mask, clip=config.clip, ref_logp=ref, kl_coef=config.kl_coef)
                (out.loss / len(chunk)).backward()
                loss += out.loss.item() / len(chunk)
                tokens += n
                for k, v in (("policy", out.policy), ("kl", out.kl), ("clip_fraction", out.clip_fraction), ("ratio", out.ratio_mean)):
                    weighted[k] += v * n
            norm = torch.nn.utils.clip_grad_norm_(trainable(policy), config.max_grad_norm)
            optimizer.step()
            parts["loss"].append(loss)
            for k, v in weighted.items():
                parts[k].append(v / max(tokens, 1.0))
            parts["grad_norm"].append(float(norm))
    return {k: statistics.fmean(v) if v else 0.0 for k, v in parts.items()}


def episode_facts(ep: Episode) -> dict[str, Any]:
    """What one episode was and did, reward aside: a line of episodes.jsonl, or of an evaluation's."""
    return {
        "task": ep.case.task.instance_id,
        "world_seed": ep.case.world_seed,
        "rows": ep.case.rows,
        **ep.stats.model_dump(),
        "parallel_share": ep.stats.parallel_share,
        "prefix_turns": ep.prefix_turns,
        "error": ep.error,
    }


def episode_record(ep: Episode, config: ParlConfig, progress: float) -> dict[str, Any]:
    return {**reward(ep.stats, config.reward, progress).model_dump(), **episode_facts(ep)}


def step_metrics(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    keys = ("total", "r_parallel", "r_finish", "r_perf", "lambda1", "lambda2", "lambda_aux", "item_f1",
            "subagents_created", "subagents_assigned", "subagents_finished", "parallel_share", "critical_steps",
            "total_steps", "orchestrator_steps", "tool_calls")
    out = {f"episode/{k}": statistics.fmean(float(r[k]) for r in records) for k in keys}
    out["episode/success"] = statistics.fmean(float(r["success"]) for r in records)
    out["episode/answered"] = statistics.fmean(float(r["answered"]) for r in records)
    out["episode/errors"] = float(sum(1 for r in records if r["error"]))
    return out


# --- checkpoints ---------------------------------------------------------------------------


COMMIT_FILE = "git_commit"


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


# --- the loop ------------------------------------------------------------------------------


# Options that say where a run is kept or how fast it goes, not what it draws or learns: a run
# may resume with another value (a moved folder, continuous batching switched on).
NOT_THE_RUN = {"out_dir", "continuous_batching"}


def same_run(saved: ParlConfig, config: ParlConfig) -> bool:
    return saved.model_dump(exclude=NOT_THE_RUN) == config.model_dump(exclude=NOT_THE_RUN)


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


def trim_log(out: Path, step: int) -> list[int]:
    """Drop the lines of ``metrics.jsonl``, ``episodes.jsonl`` and ``eval.jsonl`` after ``step``,
    the step the run goes on from, so that the logs hold exactly the steps its weights went
    through: a run killed between writing a step and saving its checkpoint, or a folder kept
    (in git, say) whose checkpoints are gone, does those steps again. Returns the steps dropped."""
    dropped: set[int] = set()
    for name in ("metrics.jsonl", "episodes.jsonl", "eval.jsonl"):
        records = read_log(out / name)
        kept = [r for r in records if r["step"] <= step]
        if len(kept) < len(records):
            dropped.update(r["step"] for r in records if r["step"] > step)
            write_whole(out / name, "".join(json.dumps(r) + "\n" for r in kept))  # a cut log is never half a log
    if dropped:
        log.info("%s: steps %s logged but not checkpointed; they run again", out, sorted(dropped))
    return sorted(dropped)


def read_log(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a run's log (``metrics.jsonl``, ``episodes.jsonl``, ``eval.jsonl``); none if it wrote none yet."""
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
        self.evals = out / "eval.jsonl"
        self.tb: Any = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tensorboard"))
        except ImportError:
            log.info("tensorboard not installed: scalars go to metrics.jsonl only")

    def write(self, step: int, scalars: dict[str, float], episodes: Sequence[dict[str, Any]]) -> None:
        self.jsonl.write(json.dumps({"step": step, **scalars}) + "\n")
        self.jsonl.flush()
        for e in episodes:
            self.episodes.write(json.dumps({"step": step, **e}) + "\n")
        self.episodes.flush()
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
        if self.tb is not None:
            self.tb.close()


def train(config: ParlConfig, *, on_step: Callable[[int, dict[str, float]], None] | None = None) -> Path:
    """Run (or resume) PARL training; returns the output folder."""
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "config.yaml"
    # Read through ParlConfig, so that an option added since the run began counts at its default.
    if saved.is_file() and not same_run(ParlConfig.model_validate(yaml.safe_load(saved.read_text(encoding="utf-8"))), config):
        raise ValueError(f"{out} holds a run with another config; use a new out_dir or the same config to resume")
    saved.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    if not (out / COMMIT_FILE).exists():
        (out / COMMIT_FILE).write_text(f"{git_commit() or ''}\n", encoding="utf-8")  # the code the run started with

    warm_start = _policy_path(config.policy)
    resume = latest_checkpoint(out)
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.torch_threads)
    policy = load_policy(config, warm_start, resume)
    if config.gradient_checkpointing:
        checkpoint_activations(policy.model)
    record_warm_start(out, config, warm_start, resume)
    subagent_model, frozen_module = load_subagent(config, warm_start)
    reference = frozen_module if frozen_module is not None else None
    if reference is None and config.kl_coef > 0:
        reference = LocalModel.from_pretrained(warm_start).model
        for p in reference.parameters():
            p.requires_grad_(False)
    pool, tools = load_task_pool(config)
    prefix = expert_prefix(config.prefix_notes) if config.expert_prefix else None
    optimizer = torch.optim.AdamW(trainable(policy.model), lr=config.lr, weight_decay=0.0)
    rng = random.Random(config.seed)
    start = 0
    if resume is not None:
        state = torch.load(resume / "trainer_state.pt", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        start = int(state["step"])
        log.info("resuming %s from step %d", out, start)
    trim_log(out, start)
    scalars_log = ScalarLog(out)
    evaluation = StepEvaluation(config, subagent_model, prefix) if config.eval_every else None
    try:
        # The warm start's figure before the first step (or a resumed run's, if the run stopped before it was written).
        if evaluation is not None and evaluation.due(start) and start not in logged_eval_steps(out):
            scalars_log.write_eval(evaluation.run(policy, start))
        for step in range(start, config.steps):
            t0 = time.perf_counter()
            progress = step / config.steps
            cases = []
            for _ in range(config.tasks_per_step):
                seed = rng.choice(config.world_seeds)
                cases.append(rng.choice(pool[seed]))
            prefilled = (policy.stats.prompt_tokens, policy.stats.reused_tokens)
            policy.start_sampling_round(step)  # a resumed run samples this step as an unbroken one did
            episodes = asyncio.run(
                rollout_groups(policy, subagent_model, tools, cases, config.group_size, config.budgets, prefix=prefix)
            )
            t_rollout = time.perf_counter()
            # The update changes the weights, which voids the kept prefixes: free their memory for it now.
            policy.prefix_cache.clear()
            records = [episode_record(ep, config, progress) for ep in episodes]
            advantages = group_advantages([r["total"] for r in records], [ep.group for ep in episodes])
            samples: list[Sample] = []
            for n, (ep, adv) in enumerate(zip(episodes, advantages)):
                for s in ep.samples:
                    s.advantage, s.episode = adv, n
                    samples.append(s)
            turns = len(samples)
            tokens = turn_tokens(samples)
            if config.max_samples_per_step is not None and turns > config.max_samples_per_step:
                # A uniform subset keeps the gradient estimate unbiased, at higher variance.
                samples = rng.sample(samples, config.max_samples_per_step)
            policy.model.train()
            losses = update(policy.model, reference, optimizer, samples, policy.pad_id, config) if samples else {}
            policy.model.eval()
            t_end = time.perf_counter()
            scalars = {**step_metrics(records), **{f"loss/{k}": v for k, v in losses.items()},
                       "train/samples": float(len(samples)), "train/turns": float(turns), "train/seconds": t_end - t0,
                       "train/rollout_seconds": t_rollout - t0, "train/update_seconds": t_end - t_rollout,
                       **tokens, "train/progress": progress,
                       # Prompt tokens the rollouts' policy turns reused from the prefix cache, of all they sent.
                       "train/reused_prompt_share": (policy.stats.reused_tokens - prefilled[1])
                       / max(1, policy.stats.prompt_tokens - prefilled[0])}
            if isinstance(subagent_model, CachedModel):
                scalars["train/subagent_cache_hits"] = float(subagent_model.hits)
            scalars_log.write(step + 1, scalars, records)
            if on_step is not None:
                on_step(step + 1, scalars)
            if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
                save_checkpoint(out, step + 1, policy, optimizer, rng)
                prune_checkpoints(out, config.keep_checkpoints)
            # Greedy decoding draws no random numbers: the evaluation leaves the run's draws as they were.
            if evaluation is not None and evaluation.due(step + 1):
                scalars_log.write_eval(evaluation.run(policy, step + 1))
    finally:
        scalars_log.close()
        if isinstance(subagent_model, CachedModel):
            subagent_model.close()
    return out
