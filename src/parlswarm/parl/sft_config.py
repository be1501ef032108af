"""The supervised warm start's configuration, ``configs/sft-*.yaml`` (:class:`SFTConfig`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from parlswarm.config import load_yaml_model
from parlswarm.models.adapter import LoraSettings
from parlswarm.models.local_settings import LocalSettings
from parlswarm.parl.compare_task import CompareTaskConfig
from parlswarm.parl.copy_task import CopyTaskConfig
from parlswarm.parl.label_task import LabelTaskConfig
from parlswarm.parl.next_place_task import NextPlaceTaskConfig
from parlswarm.parl.notes import COMPARED_STYLES, FIND_STYLES, TOOL_CHECKED_STYLES, NoteStyle
from parlswarm.parl.tool_word_task import ToolWordTaskConfig

LookupPlaces = Literal["region", "gold"]  # where relabelled look-ups draw their place (parlswarm.parl.relabel)


class OnPolicyConfig(BaseModel):
    """Relabelled on-policy turns (DAgger; :mod:`parlswarm.parl.relabel`), added to the expert's.

    ``policy`` (a ``save_pretrained`` folder, usually the run's ``init``) runs sub-agent
    look-ups and single-mode tasks in ``world_seeds`` at its own settings; every state it
    reaches becomes a training turn with the expert's reply as the target.
    """

    model_config = ConfigDict(extra="forbid")

    policy: Path
    world_seeds: list[int] = Field(default_factory=lambda: list(range(1, 9)))  # training worlds only
    lookups: int = Field(24, ge=0)  # one-place sub-agent look-ups per world
    single_tasks: int = Field(4, ge=0)  # single-mode tasks per world (of at most max_rows rows)
    max_rows: int | None = 10
    lookup_steps: int = Field(6, ge=1)
    # "region": any place of the task's region (some must be left out); "gold": its gold rows only
    lookup_places: LookupPlaces = "region"
    single_steps: int = Field(20, ge=1)
    max_new_tokens: int | None = 320  # caps the policy's turns (a looping turn ends sooner)
    temperature: float | None = None  # the policy's sampling temperature; its own setting when None
    samples: int = Field(2000, ge=0)  # relabelled turns drawn into the training set (with replacement if fewer)
    concurrency: int = Field(32, ge=1)  # runs in flight together (decoded in batches)


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    world_seeds: list[int] = Field(default_factory=lambda: list(range(1, 13)))  # never 0: that is the real world
    dev_world_seed: int = 900
    # "drawn": new training questions in every world seed (parlswarm.world.tasks.drawn_tasks),
    # so column lists are read off the task, not learnt by heart from a few dozen.
    split: Literal["train", "dev", "test", "all", "drawn"] = "train"
    dev_split: Literal["train", "dev", "test", "all"] = "dev"
    drawn_tasks: int = Field(74, ge=1)  # tasks per world seed with split "drawn"
    max_rows: int | None = 10  # orchestrator traces only from tasks with at most this many rows
    rows_per_subagent: int = Field(1, ge=1)  # the expert's share of rows per sub-agent
    orchestrator_samples: int = Field(2000, ge=0)
    orchestrator_parallel_share: float = Field(0.2, ge=0.0, le=1.0)
    # Where the serial expert is recorded: "single" mode (its own prompt, no orchestration tools)
    # or "swarm" mode (the orchestrator's prompt and tools, none used), so that swarm-mode
    # decisions are mostly serial too — the serial-leaning warm start PARL needs (docs/parl.md).
    serial_mode: Literal["single", "swarm"] = "single"
    # None: a parallel conversation's turns are drawn together, at orchestrator_parallel_share.
    # A number: its turns after create_subagent (assign, merge) are drawn apart, this many, so
    # the share sets the decision alone and the turns after it can still be trained enough.
    delegated_samples: int | None = Field(None, ge=0)
    # None: a serial conversation's answer turn is drawn with its other turns. A number: answer
    # turns are drawn apart, this many. A serial trace has one answer turn among a dozen tool
    # turns, and its prompt is the longest, so drawn together few are trained (docs/local-model.md).
    answer_samples: int | None = Field(None, ge=0)
    # None: a serial conversation's start (the turns up to opening the region's index page) is
    # drawn with its other turns, from tasks of at most max_rows rows only. A number: start turns
    # are drawn apart, this many, from every task's serial run (cut after its start when the
    # task is over max_rows). Small tasks come from a few small regions, so the start alone
    # teaches which region the task names (docs/local-model.md, "Start turns").
    start_samples: int | None = Field(None, ge=0)
    # None: a turn right after a check result is drawn with its conversation's other turns. A
    # number: those turns are drawn apart, this many, half after a check that answered yes and
    # half after one that answered no (data.check_tool), so the verdict that copies the answer
    # is taught both ways even where the traces hold more of one (docs/local-model.md).
    verdict_samples: int | None = Field(None, ge=0)
    subtask: Literal["full", "short"] = "full"  # how the expert writes sub-tasks (see parlswarm.world.expert)
    subagent_samples: int = Field(2000, ge=0)
    dev_samples: int = Field(64, ge=0)
    max_tokens: int = Field(2048, ge=16)  # samples longer than this are left out (counted)
    notes: bool = True  # teacher notes (see NotingExpert)
    note_style: NoteStyle = "labelled"  # how the teacher notes are written (see NotingExpert)
    reader: Literal["pages", "find"] = "pages"  # how the expert reads a place (see parlswarm.world.expert)
    # The world's check tool on offer (world_tools(check=True)): the find reader checks each place's
    # filter value with it, and the model trained on these traces must be run with it.
    check_tool: bool = False
    on_policy: OnPolicyConfig | None = None  # add the policy's own runs, relabelled by the expert

    @model_validator(mode="after")
    def _stepwise_reads_with_find(self) -> DataConfig:
        if self.note_style == "stepwise" and self.reader != "find":
            raise ValueError("data.note_style 'stepwise' notes find results one at a time: set data.reader to 'find'")
        if self.note_style in FIND_STYLES and self.reader != "find":
            raise ValueError(f"data.note_style '{self.note_style}' notes the rows of find results: set data.reader to 'find'")
        if self.note_style in TOOL_CHECKED_STYLES and not self.check_tool:
            raise ValueError(f"data.note_style '{self.note_style}' copies the check tool's answers: set data.check_tool to true")
        if self.verdict_samples is not None and not self.check_tool:
            raise ValueError("data.verdict_samples draws the turns after a check result: set data.check_tool to true")
        if self.check_tool and self.reader != "find":
            raise ValueError("data.check_tool: the expert checks filter values with the find reader only: set data.reader to 'find'")
        return self


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(1000, ge=1)
    batch_tokens: int = Field(8192, ge=64)  # tokens per optimiser step (samples packed by length)
    lr: float = Field(2e-3, gt=0)
    min_lr: float = 1e-4
    warmup: int = Field(50, ge=0)
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    eval_every: int = Field(100, ge=1)
    save_every: int = Field(100, ge=1)
    seed: int = 0
    threads: int | None = None  # torch threads; torch's default when None
    max_minutes: float | None = None  # stop (and save) after this long even before ``steps``
    # Share of a turn's tokens replaced, in the model's *input* only, by random ordinary
    # tokens; every target stays the expert's token. Teacher forcing never shows the model a
    # wrong token of its own; this teaches it to carry on correctly after one.
    input_noise: float = Field(0.0, ge=0.0, lt=1.0)
    # With data.check_tool: each verdict word (the yes / no of ``Name (code): yes: kept``) counts this
    # many times in the loss. A turn after a check holds one such word among hundreds of copied
    # tokens, and rounds at weight 1 learnt which answer is frequent, not to read the check's.
    verdict_weight: float = Field(1.0, ge=1.0)
    copy_task: CopyTaskConfig = Field(default_factory=CopyTaskConfig)
    compare_task: CompareTaskConfig = Field(default_factory=CompareTaskConfig)
    tool_word_task: ToolWordTaskConfig = Field(default_factory=ToolWordTaskConfig)
    next_place_task: NextPlaceTaskConfig = Field(default_factory=NextPlaceTaskConfig)
    label_task: LabelTaskConfig = Field(default_factory=LabelTaskConfig)
    # Train a LoRA adapter on the ``init`` model instead of every weight (parlswarm.models.adapter);
    # the run's folders then hold the adapter and name its base (``init``, or init's own base
    # when init is an adapter, whose training goes on).
    lora: LoraSettings | None = None


class SFTConfig(BaseModel):
    """``configs/sft-*.yaml``."""

    model_config = ConfigDict(extra="forbid")

    out_dir: Path = Path("runs/sft-nano")
    architecture: Path = Path("configs/nano-small.json")  # a NanoConfig, relative to the config file
    vocab_size: int | None = None  # overrides the architecture's (tokenizer target size)
    # Fine-tune this model instead of a new nano model: a save_pretrained folder or a local
    # model spec (``hf:PATH``, ``hf-gguf:FILE``, ``hf-gguf:smollm2``, ``builtin``).
    init: str | None = None
    # Give init this many decoder layers before training: new layers whose outputs start at
    # zero, so training goes on from what init computes (parlswarm.models.deepen).
    deepen_to: int | None = Field(None, ge=2)
    settings: LocalSettings = Field(
        default_factory=lambda: LocalSettings(tool_format="compact", keep_tool_results=1, max_context=None)
    )
    tokenizer_pages: int = Field(3000, ge=0)  # world pages (from the first training seed) the tokenizer learns on
    # Start from another run's samples (its data.pt) and the model they were encoded for (its
    # initial/) instead of drawing them again; refused unless that run drew them by the same
    # recipe (see SFTRun.recipe_digest). Minutes saved for a round that differs only in training.
    data_from: Path | None = None
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @model_validator(mode="after")
    def _lora_and_init_agree(self) -> SFTConfig:
        if self.train.lora is not None and self.init is None:
            raise ValueError("train.lora needs init: the pretrained model the adapter is trained on")
        if self.init is not None and self.init.startswith("hf-gguf:") and self.train.lora is None:
            # transformers de-quantises a GGUF model but cannot save it whole again.
            raise ValueError(f"init {self.init!r} is a GGUF model: fine-tune it with train.lora (an adapter)")
        if self.deepen_to is not None and (self.init is None or self.train.lora is not None):
            raise ValueError(
                "deepen_to deepens a trained model, trained whole: it needs init and no train.lora "
                "(a new model takes its depth from the architecture file)"
            )
        if self.train.compare_task.weight > 0 and self.data.note_style not in COMPARED_STYLES:
            raise ValueError(
                f"train.compare_task writes the comparison lines of 'compared' and 'matched' notes; data.note_style is "
                f"{self.data.note_style!r}: set it to one of those or the compare task's weight to 0"
            )
        return self

    @classmethod
    def load(cls, path: str | Path) -> SFTConfig:
        path = Path(path)
        config = load_yaml_model(cls, path, "SFT config")
        base = path.parent
        if not config.architecture.is_absolute() and not config.architecture.exists():
            candidate = (base / config.architecture).resolve()
            if candidate.exists():
                config.architecture = candidate
        return config
