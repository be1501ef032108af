"""Deepen a trained Llama-style model without changing what it computes (block expansion).

A decoder layer adds its attention and MLP outputs to the residual stream; a copy of a layer
whose two output projections (``self_attn.o_proj``, ``mlp.down_proj``) are zero adds
nothing, so a model with such copies inserted computes exactly what it did before, and
training can go on from where it was with more layers to learn in. This is the block
expansion of LLaMA Pro (Wu et al. 2024): the layers are split into equal groups and each
group gets one new layer after its last, a copy of that last layer.

The nano model's sub-agents lose their place in lists (a ``find`` written twice, a value
copied into the next column); whether depth, not data, is what it lacks is what a deepened
model trained on the same data as the shallow one shows.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from transformers import PreTrainedModel


def expansion_points(layers: int, target: int) -> list[int]:
    """After which of ``layers`` layers (0-based) a new one goes, to reach ``target``.

    Spread evenly: the layers are cut into ``target - layers`` groups of near-equal size and
    the new layer follows each group's last (4 → 6: after layers 1 and 3)."""
    extra = target - layers
    if extra < 1 or extra > layers:
        raise ValueError(
            f"cannot deepen {layers} layers to {target}: between {layers + 1} and {2 * layers} "
            "(one new layer after each of up to all the layers)"
        )
    return [(g + 1) * layers // extra - 1 for g in range(extra)]


def deepen(model: PreTrainedModel, target: int) -> PreTrainedModel:
    """``model`` (a ``LlamaForCausalLM`` or a model like it) with ``target`` decoder layers, in place.

    The new layers are copies whose output projections are zero: the outputs are unchanged,
    and their own weights start from a trained layer's rather than at random."""
    decoder = model.get_decoder()
    old = list(decoder.layers)
    points = set(expansion_points(len(old), target))
    old_types = getattr(model.config, "layer_types", None)  # per-layer attention kinds, where a config has them
    layers: list[nn.Module] = []
    types: list[str] = []
    for i, layer in enumerate(old):
        layers.append(layer)
        if old_types:
            types += [old_types[i]] * (2 if i in points else 1)
        if i in points:
            new = copy.deepcopy(layer)
            with torch.no_grad():
                for proj in (new.self_attn.o_proj, new.mlp.down_proj):
                    proj.weight.zero_()
                    if proj.bias is not None:
                        proj.bias.zero_()
            layers.append(new)
    for index, layer in enumerate(layers):
        layer.self_attn.layer_idx = index  # the key-value cache is indexed by it
    decoder.layers = nn.ModuleList(layers)
    model.config.num_hidden_layers = target
    if old_types:
        model.config.layer_types = types
    return model


__all__ = ["deepen", "expansion_points"]
