"""How parlswarm runs a local model (:class:`LocalSettings`), saved as ``parlswarm.json`` beside its weights."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from parlswarm.models.chat_format import FOLD_CALLS_NEED_RESULTS, ToolFormat

SETTINGS_FILE = "parlswarm.json"  # LocalSettings saved beside the weights


class Sampling(BaseModel):
    """Decoding options. ``temperature == 0`` decodes greedily."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(512, ge=1)
    seed: int | None = None


class LocalSettings(BaseModel):
    """How parlswarm talks to a local model; saved as ``parlswarm.json`` beside nano weights."""

    model_config = ConfigDict(extra="forbid")

    tool_format: ToolFormat = "json"
    max_context: int | None = None  # tokens; the model config's max_position_embeddings when None
    # Context folding for small context windows: only the tool results of the latest
    # ``keep_tool_results`` assistant turns are shown in full, older ones as FOLDED_RESULT
    # (the model keeps what it needs in its own notes). None shows everything.
    keep_tool_results: int | None = Field(None, ge=1)
    # With keep_tool_results: the older turns are shown as their text alone (their notes), their
    # tool calls and folded results left out, so a serial run's prompt grows by its notes only.
    fold_tool_calls: bool = False
    # A prompt that fills the context is rendered again with every turn before the latest folded to
    # its notes (``fold_tool_calls`` on, ``keep_tool_results`` 1 if unset) rather than failing the
    # agent: a long serial run goes on from its notes instead of ending without an answer.
    fold_on_overflow: bool = True
    # Trained with the world's check tool (SFT's data.check_tool writes it): wherever the world's
    # tools are offered to this model, ``check`` is offered too (parlswarm.world.tools.offer_check).
    check_tool: bool = False
    sampling: Sampling = Field(default_factory=Sampling)
    # For a folder that holds a LoRA adapter (parlswarm.models.adapter): the model spec of the
    # pretrained model it applies to (``hf-gguf:smollm2``, ``hf:PATH`` or a folder).
    base: str | None = None
    # sha256 of the base's weights when the adapter was trained (weights_digest): a spec such as
    # ``builtin:smollm2`` names whatever is shipped under it today, and an adapter merged into
    # other weights than it was trained on decodes garbage without any error.
    base_digest: str | None = None

    @model_validator(mode="after")
    def _fold_calls_with_results(self) -> LocalSettings:
        if self.fold_tool_calls and self.keep_tool_results is None:
            raise ValueError(FOLD_CALLS_NEED_RESULTS)
        return self


def read_settings(folder: str | Path) -> LocalSettings | None:
    """The :class:`LocalSettings` saved in ``folder`` (``parlswarm.json``); None when it has none."""
    file = Path(folder) / SETTINGS_FILE
    return LocalSettings.model_validate_json(file.read_text(encoding="utf-8")) if file.is_file() else None
