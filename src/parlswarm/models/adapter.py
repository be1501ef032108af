"""LoRA adapters (``peft``) on a pretrained local model.

A pretrained model already copies from its context, which the from-scratch nano model
struggles to learn on two cores (docs/local-model.md); a low-rank adapter trains a few
million of its parameters instead of all of them, and is small enough to ship.

An adapter folder holds ``adapter_config.json`` and ``adapter_model.safetensors`` (peft's
``save_pretrained``), the tokenizer, and ``parlswarm.json`` whose ``base`` names the model it
applies to as a model spec (``hf-gguf:smollm2``, ``hf:PATH`` or a folder).
:meth:`parlswarm.models.local.LocalModel.from_pretrained` loads such a folder: the base, then
the adapter merged into it, so decoding costs what the base costs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ADAPTER_CONFIG = "adapter_config.json"
# Every linear layer of a Llama block: attention and MLP.
LLAMA_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class LoraSettings(BaseModel):
    """The adapter's shape: ``train.lora`` of an SFT config, ``lora`` of a PARL config."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(16, ge=1)  # rank
    alpha: float = Field(32.0, gt=0)  # the update is scaled by alpha / r
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    targets: list[str] = Field(default_factory=lambda: list(LLAMA_LINEAR), min_length=1)  # module names


def has_adapter(folder: str | Path) -> bool:
    return (Path(folder) / ADAPTER_CONFIG).is_file()


def add_adapter(model: Any, settings: LoraSettings) -> Any:
    """``model`` with a new trainable adapter; every base weight frozen."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.targets),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def load_adapter(model: Any, folder: str | Path, *, trainable: bool = False) -> Any:
    """The adapter saved in ``folder`` on ``model``: merged into it, or kept apart to train on."""
    from peft import PeftModel

    peft_model = PeftModel.from_pretrained(model, str(folder), is_trainable=trainable)
    return peft_model if trainable else peft_model.merge_and_unload()


def trainable(model: Any) -> list[Any]:
    """The parameters an optimiser updates: the adapter's alone under LoRA, else all."""
    return [p for p in model.parameters() if p.requires_grad]


__all__ = ["ADAPTER_CONFIG", "LLAMA_LINEAR", "LoraSettings", "add_adapter", "has_adapter", "load_adapter", "trainable"]
