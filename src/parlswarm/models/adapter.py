"""LoRA adapters (``peft``) on a pretrained local model.

A pretrained model already copies from its context, which the from-scratch nano model
struggles to learn on two cores (docs/local-model.md); a low-rank adapter trains a few
million of its parameters instead of all of them, and is small enough to ship.

An adapter folder holds ``adapter_config.json`` and ``adapter_model.safetensors`` (peft's
``save_pretrained``), the tokenizer, and ``parlswarm.json`` whose ``base`` names the model it
applies to as a model spec (``hf-gguf:smollm2``, ``hf:PATH`` or a folder). A shipped adapter
may hold its weights as 8-bit integers instead (``adapter_model.int8.safetensors``: each
row scaled by its largest magnitude, the scales beside; a quarter of float32's bytes), which
peft does not read: they are expanded to float32 here before peft sees them.
:meth:`parlswarm.models.local.LocalModel.from_pretrained` loads such a folder: the base, then
the adapter merged into it, so decoding costs what the base costs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_INT8 = "adapter_model.int8.safetensors"
_SCALE = ".int8_scale"
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
    from peft import LoraConfig, PeftModel, get_peft_model, set_peft_model_state_dict

    folder = Path(folder)
    if not (folder / ADAPTER_INT8).is_file():
        peft_model = PeftModel.from_pretrained(model, str(folder), is_trainable=trainable)
    else:
        config = LoraConfig.from_pretrained(str(folder))
        config.inference_mode = not trainable
        # The base was checked by its digest (parlswarm.json); peft would warn that a spec
        # such as builtin:NAME is not the loaded model's path.
        config.base_model_name_or_path = getattr(model, "name_or_path", None) or config.base_model_name_or_path
        peft_model = get_peft_model(model, config)
        result = set_peft_model_state_dict(peft_model, adapter_tensors(folder))
        if result.unexpected_keys:
            raise ValueError(f"{folder / ADAPTER_INT8}: weights for no layer of the model: {result.unexpected_keys[:3]}")
    return peft_model if trainable else peft_model.merge_and_unload()


def adapter_tensors(folder: str | Path) -> dict[str, Any]:
    """The adapter weights saved in ``folder``, as peft names them; 8-bit ones expanded to float32."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if (folder / ADAPTER_INT8).is_file():
        stored = load_file(str(folder / ADAPTER_INT8))
        return {k: v.float() * stored[k + _SCALE].float() for k, v in stored.items() if not k.endswith(_SCALE)}
    return load_file(str(folder / ADAPTER_WEIGHTS))


def to_int8(tensors: dict[str, Any]) -> dict[str, Any]:
    """Each floating tensor as int8 rows scaled by their largest magnitude (``KEY`` and ``KEY.int8_scale``)."""
    import torch

    out: dict[str, Any] = {}
    for key, value in tensors.items():
        if not value.is_floating_point() or value.dim() != 2:
            raise ValueError(f"{key}: only 2-D floating weights are stored as int8, not {value.dtype} {tuple(value.shape)}")
        scale = value.float().abs().amax(dim=1, keepdim=True) / 127.0
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # a row of zeros stays zero
        out[key] = torch.round(value.float() / scale).clamp(-127, 127).to(torch.int8).contiguous()
        out[key + _SCALE] = scale.contiguous()
    return out


def trainable(model: Any) -> list[Any]:
    """The parameters an optimiser updates: the adapter's alone under LoRA, else all."""
    return [p for p in model.parameters() if p.requires_grad]


__all__ = [
    "ADAPTER_CONFIG",
    "ADAPTER_INT8",
    "ADAPTER_WEIGHTS",
    "LLAMA_LINEAR",
    "LoraSettings",
    "adapter_tensors",
    "add_adapter",
    "has_adapter",
    "load_adapter",
    "to_int8",
    "trainable",
]
