"""Block expansion (parlswarm.models.deepen): a deeper model that computes what the shallow one did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from parlswarm.models.deepen import deepen, expansion_points
from parlswarm.parl.sft_config import SFTConfig


def test_new_layers_are_spread_evenly_and_impossible_depths_are_refused() -> None:
    assert expansion_points(4, 6) == [1, 3]  # after each half
    assert expansion_points(4, 5) == [3]
    assert expansion_points(4, 8) == [0, 1, 2, 3]  # every layer doubled
    assert expansion_points(3, 5) == [0, 2]
    for target in (4, 3, 9):
        with pytest.raises(ValueError, match=f"cannot deepen 4 layers to {target}: between 5 and 8"):
            expansion_points(4, target)


def _tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # weights well away from zero, so an output projection left alive would show
        for p in model.parameters():
            p.normal_(0, 0.3)
    return model.eval()


def test_a_deepened_model_computes_decodes_and_reloads_as_before_and_its_new_layers_learn(tmp_path: Path) -> None:
    model = _tiny_llama()
    ids = torch.randint(0, 64, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model(ids).logits
    greedy_before = model.generate(ids, max_new_tokens=10, do_sample=False, pad_token_id=0)
    old_layers = list(model.model.layers)

    assert deepen(model, 5) is model
    layers = list(model.model.layers)
    assert len(layers) == 5 and model.config.num_hidden_layers == 5
    assert [layers[i] for i in (0, 2, 3)] == old_layers  # old layers kept, a new one after layers 0 and 2
    assert [layer.self_attn.layer_idx for layer in layers] == list(range(5))
    new = [layers[1], layers[4]]
    assert torch.equal(new[1].self_attn.q_proj.weight, old_layers[2].self_attn.q_proj.weight)  # a copy of the layer before it
    assert new[1].self_attn.q_proj.weight is not old_layers[2].self_attn.q_proj.weight  # not shared with it
    with torch.no_grad():
        after = model(ids).logits
    assert torch.allclose(before, after, atol=1e-5)
    # The key-value cache has a slot for every layer: cached decoding gives the same tokens.
    assert torch.equal(model.generate(ids, max_new_tokens=10, do_sample=False, pad_token_id=0), greedy_before)

    # The zeroed projections get gradients at once (the layers' inputs are not zero); the rest of
    # a new layer starts learning once they have moved.
    model.train()
    model(ids, labels=ids).loss.backward()
    for layer in new:
        assert layer.self_attn.o_proj.weight.grad.abs().sum() > 0
        assert layer.mlp.down_proj.weight.grad.abs().sum() > 0
        assert layer.mlp.up_proj.weight.grad.abs().sum() == 0

    model.save_pretrained(tmp_path / "deep")
    assert json.loads((tmp_path / "deep" / "config.json").read_text())["num_hidden_layers"] == 5
    again = LlamaForCausalLM.from_pretrained(tmp_path / "deep").eval()
    with torch.no_grad():
        assert torch.allclose(again(ids).logits, before, atol=1e-5)


def test_deepen_to_needs_a_trained_model_trained_whole() -> None:
    message = "deepen_to deepens a trained model, trained whole: it needs init and no train.lora"
    with pytest.raises(ValueError, match=message):
        SFTConfig.model_validate({"deepen_to": 6})
    with pytest.raises(ValueError, match=message):
        SFTConfig.model_validate({"deepen_to": 6, "init": "builtin", "train": {"lora": {"r": 4}}})
    assert SFTConfig.model_validate({"deepen_to": 6, "init": "builtin"}).deepen_to == 6
