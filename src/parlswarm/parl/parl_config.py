"""The configuration of a PARL run (``configs/parl-*.yaml``), and which of its options make it another run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from parlswarm.config import load_yaml_model
from parlswarm.models.adapter import LoraSettings
from parlswarm.parl.notes import NoteStyle
from parlswarm.parl.rewards import RewardConfig
from parlswarm.types import Budgets


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
    skip_zero_advantage: bool = Field(
        False,
        description="leave out of the update the turns whose advantage is 0 (a group whose rewards are all equal) when "
        "kl_coef is 0: their gradient is exactly 0, so the weights come out bit for bit as without the option, for no "
        "forward or backward pass over them; only the ratio and clip-fraction diagnostics, taken over the turns that "
        "ran, differ. Off by default, so that runs logged before it keep their figures (docs/parl.md, thirty-sixth look)",
    )
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




# Options that say where a run is kept or how fast it goes, not what it draws or learns: a run
# may resume with another value (a moved folder, continuous batching switched on).
NOT_THE_RUN = {"out_dir", "continuous_batching"}


def run_differences(saved: ParlConfig, config: ParlConfig) -> list[str]:
    """The options, outside :data:`NOT_THE_RUN`, on which two configs differ, as ``name: saved → now``."""
    before, now = saved.model_dump(exclude=NOT_THE_RUN), config.model_dump(exclude=NOT_THE_RUN)
    return [f"{k}: {before[k]!r} → {now[k]!r}" for k in before if before[k] != now[k]]


def same_run(saved: ParlConfig, config: ParlConfig) -> bool:
    return not run_differences(saved, config)
