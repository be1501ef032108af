"""A tiny random nano policy saved as a model folder, for tests of scripts that load one."""

from __future__ import annotations

from pathlib import Path

from parlswarm import prompts
from parlswarm.models.local import LocalSettings
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
