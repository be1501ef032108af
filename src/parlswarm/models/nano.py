"""The nano model: a byte-level BPE tokenizer trained on the world's text and a small Llama.

Both are standard Hugging Face objects (``PreTrainedTokenizerFast``, ``LlamaForCausalLM``),
saved with ``save_pretrained`` and loaded back by :class:`~parlswarm.models.local.LocalModel`
like any other model. The tokenizer splits digits one by one, so the model copies numbers
from pages digit by digit with ten well-trained embeddings instead of memorising number
chunks, and it knows the chat markers of :data:`~parlswarm.models.chat_format.NANO_CHAT_TEMPLATE`
and the tool-call tags as single tokens.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from parlswarm.models.chat_format import NANO_CHAT_TEMPLATE, NANO_END, NANO_SPECIAL_TOKENS

PAD = "<|pad|>"


class NanoConfig(BaseModel):
    """The architecture of a nano model (``configs/nano-*.json``); the vocabulary comes from its tokenizer."""

    model_config = ConfigDict(extra="forbid")

    vocab_size: int = Field(2048, ge=len(NANO_SPECIAL_TOKENS) + 256)  # tokenizer target size
    hidden_size: int = Field(256, ge=8)
    intermediate_size: int = Field(688, ge=8)
    num_hidden_layers: int = Field(4, ge=1)
    num_attention_heads: int = Field(4, ge=1)
    num_key_value_heads: int = Field(4, ge=1)
    max_position_embeddings: int = Field(2048, ge=64)
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = True
    # Tokenizer: every whitespace character its own token, so a word has one token sequence
    # wherever it stands (" Angola" in a list, "(Angola)" in a header, "Angola" opening a note)
    # and copying it is token for token. Byte-level BPE otherwise learns " Angola" as one token
    # and "Angola" as three, and a small model must learn that they spell the same thing.
    separate_spaces: bool = False

    @classmethod
    def load(cls, path: str | Path) -> NanoConfig:
        path = Path(path)
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"nano model config not found: {path}") from None
        except ValueError as exc:
            raise ValueError(f"{path}: invalid nano model config: {exc}") from None


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2048, separate_spaces: bool = False) -> Any:
    """Train a byte-level BPE tokenizer on ``texts``; returns a ``PreTrainedTokenizerFast``.

    ``separate_spaces``: split off every whitespace character as its own token (see
    :attr:`NanoConfig.separate_spaces`).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    steps = [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    if separate_spaces:
        steps.insert(0, pre_tokenizers.Split(Regex(r"\s"), behavior="isolated"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(steps)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(NANO_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=NANO_END,
        pad_token=PAD,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = NANO_CHAT_TEMPLATE
    return fast


def build_model(config: NanoConfig, tokenizer: Any, seed: int = 0) -> Any:
    """A freshly initialised ``LlamaForCausalLM`` sized by ``config`` for ``tokenizer``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    llama = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=config.max_position_embeddings,
        rope_theta=config.rope_theta,
        tie_word_embeddings=config.tie_word_embeddings,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(llama)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def parameter_count(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def write_settings(folder: Path, settings: Any) -> None:
    """Save the :class:`~parlswarm.models.local_settings.LocalSettings` a model is to be run with."""
    from parlswarm.models.local_settings import SETTINGS_FILE

    (folder / SETTINGS_FILE).write_text(json.dumps(settings.model_dump(), indent=2) + "\n", encoding="utf-8")


__all__ = ["NanoConfig", "build_model", "parameter_count", "train_tokenizer", "write_settings"]
