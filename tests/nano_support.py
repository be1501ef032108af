"""Tiny random nano models: one saved as a model folder for tests of scripts that load one, and
one in memory with large weights for tests of decoding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from parlswarm import prompts
from parlswarm.models.local_settings import LocalSettings
from parlswarm.models.nano import NanoConfig, build_model, train_tokenizer, write_settings


def tiny_policy(folder: Path) -> Path:
    """Save an untrained two-layer nano model (tokenizer from the agent prompts) in ``folder``."""
    tokenizer = train_tokenizer([prompts.load("orchestrator"), prompts.load("subagent")] * 5, vocab_size=400)
    nano = NanoConfig(vocab_size=400, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=8192)
    build_model(nano, tokenizer, seed=0).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    write_settings(folder, LocalSettings(tool_format="compact"))
    return folder


DECODING_TEXTS = ["Chad: capital N'Djamena; population 19,093,595. France: capital Paris; code .fr search open_page"] * 30


def loud_tiny_model(weights_seed: int, texts: list[str] = DECODING_TEXTS, vocab_size: int = 300) -> tuple[Any, Any]:
    """A two-layer nano model and its tokenizer, with large random weights.

    Large weights make greedy outputs vary from prompt to prompt, so that a padding, position
    or cache bug in decoding shows up as different tokens.
    """
    tokenizer = train_tokenizer(texts, vocab_size=vocab_size)
    config = NanoConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024)
    model = build_model(config, tokenizer, seed=0)
    gen = torch.Generator().manual_seed(weights_seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return model, tokenizer
