"""GRPO for the orchestrator, in plain PyTorch: readable top to bottom.

A *sample* is one orchestrator turn of one episode: the prompt the orchestrator saw (system
prompt, task, its earlier turns, tool results and sub-agent messages) and the tokens it
generated. Only generated tokens are trained — the mask is 1 on the completion and 0 on the
prompt — so tool results and sub-agent messages stay observations. Every turn of an episode
carries the episode's advantage: its reward normalised within its group (the episodes of
the same task).

Loss per token (PPO-style clipped ratio, optional k3 KL estimate to a reference model)::

    ratio = exp(logp − logp_old)
    loss  = −min(ratio·A, clip(ratio, 1−ε, 1+ε)·A) + β·(exp(ref − logp) − (ref − logp) − 1)

averaged over the completion tokens of each sample, then over samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class Sample:
    """One orchestrator turn to train on."""

    prompt_ids: list[int]
    completion_ids: list[int]
    old_logprobs: list[float]  # log-probabilities of completion_ids under the sampling policy
    advantage: float = 0.0
    episode: int = 0


def group_advantages(rewards: Sequence[float], groups: Sequence[int], scale: bool = True, eps: float = 1e-6) -> list[float]:
    """Reward minus its group's mean, divided by the group's standard deviation when ``scale``.

    A group whose rewards are all equal gets advantages of exactly 0: it carries no signal.
    Its mean is taken as its reward, not as ``sum / n``, which rounds off the reward for most
    group sizes that are not a power of 2 (three rewards of 0.1 average to 0.10000000000000002)
    and would leave every turn an advantage of about -1e-11, all of one sign, that
    ``skip_zero_advantage`` could not skip.
    """
    if len(rewards) != len(groups):
        raise ValueError("rewards and groups must have the same length")
    by_group: dict[int, list[float]] = {}
    for r, g in zip(rewards, groups):
        by_group.setdefault(g, []).append(r)
    stats = {}
    for g, rs in by_group.items():
        mean = rs[0] if min(rs) == max(rs) else sum(rs) / len(rs)
        std = math.sqrt(sum((r - mean) ** 2 for r in rs) / len(rs))
        stats[g] = (mean, std)
    out = []
    for r, g in zip(rewards, groups):
        mean, std = stats[g]
        out.append((r - mean) / (std + eps) if scale else r - mean)
    return out


def batch_tensors(samples: Sequence[Sample], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded input ids, attention mask, and the completion mask aligned with targets."""
    seqs = [s.prompt_ids + s.completion_ids for s in samples]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(seqs), width), dtype=torch.long)
    completion = torch.zeros((len(seqs), width - 1), dtype=torch.float32)
    for i, (s, seq) in enumerate(zip(samples, seqs)):
        ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        attention[i, : len(seq)] = 1
        # target position j predicts token j+1: completion tokens sit at len(prompt) .. len(seq)-1
        completion[i, len(s.prompt_ids) - 1 : len(seq) - 1] = 1.0
    return ids, attention, completion


def token_logprobs(
    model: torch.nn.Module,
    ids: torch.Tensor,
    attention: torch.Tensor,
    temperature: float = 1.0,
    wanted: torch.Tensor | None = None,
) -> torch.Tensor:
    """log p(token_{j+1} | tokens_≤j) for every position j, shape [batch, width − 1].

    ``temperature``: the distribution the tokens were sampled from, softmax(logits / T). The
    policy gradient is that of the sampling policy, so rollouts sampled below temperature 1
    are scored (and their ratios and KL taken) under the same tempered distribution.

    ``wanted`` ([batch, width − 1], e.g. the completion mask of ``batch_tensors``): only these
    positions need a value; the others are 0. Each row then runs alone, without padding, and
    the vocabulary projection covers only its positions from the first wanted one on. The
    logits of a whole batch (rows × width × vocabulary, several copies for the softmax and
    its gradient) are what exhausts memory when prompts run to thousands of tokens: 4 rows of
    6,000 tokens × SmolLM2's 49,152 words are 4.7 GB a copy.
    """
    device = next(model.parameters()).device  # the model's device (a GPU when it runs on one)
    ids, attention = ids.to(device), attention.to(device)
    if wanted is None:
        logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1, :].float() / temperature
        return -F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
    width = ids.shape[1]
    rows = []
    for i in range(ids.shape[0]):
        length = int(attention[i].sum())
        positions = torch.nonzero(wanted[i]).flatten()
        if positions.numel() == 0:
            rows.append(torch.zeros(width - 1, device=device))
            continue
        first = int(positions[0])
        # Logits of positions first .. length − 1; the last predicts past the end and is dropped.
        logits = model(input_ids=ids[i : i + 1, :length], logits_to_keep=length - first).logits[0, :-1].float() / temperature
        logp = -F.cross_entropy(logits, ids[i, first + 1 : length], reduction="none")
        rows.append(F.pad(logp, (first, width - length)))
    return torch.stack(rows)


def keep_old_logprobs(samples: Sequence[Sample], logp: torch.Tensor) -> None:
    """Store each sample's completion log-probabilities (its row of ``token_logprobs``) as ``old_logprobs``."""
    for s, row in zip(samples, logp):
        start = len(s.prompt_ids) - 1
        s.old_logprobs = row[start : start + len(s.completion_ids)].tolist()


def pad_old_logprobs(samples: Sequence[Sample], width: int) -> torch.Tensor:
    old = torch.zeros((len(samples), width - 1), dtype=torch.float32)
    for i, s in enumerate(samples):
        start = len(s.prompt_ids) - 1
        old[i, start : start + len(s.old_logprobs)] = torch.tensor(s.old_logprobs, dtype=torch.float32)
    return old


@dataclass
class LossParts:
    loss: torch.Tensor
    policy: float
    kl: float
    clip_fraction: float
    ratio_mean: float


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip: float = 0.2,
    ref_logp: torch.Tensor | None = None,
    kl_coef: float = 0.0,
) -> LossParts:
    """The clipped GRPO objective (to minimise) over masked tokens; shapes [batch, tokens]."""
    old_logp, advantages, mask = old_logp.to(logp.device), advantages.to(logp.device), mask.to(logp.device)
    if ref_logp is not None:
        ref_logp = ref_logp.to(logp.device)
    ratio = torch.exp(logp - old_logp)
    adv = advantages.unsqueeze(1)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * adv
    per_token = -torch.minimum(unclipped, clipped)
    kl = torch.zeros_like(per_token)
    if ref_logp is not None and kl_coef > 0:
        delta = ref_logp - logp
        kl = torch.exp(delta) - delta - 1.0
        per_token = per_token + kl_coef * kl
    tokens = mask.sum(dim=1).clamp(min=1.0)
    loss = ((per_token * mask).sum(dim=1) / tokens).mean()
    n = mask.sum().clamp(min=1.0)
    ratio, unclipped, clipped, kl = ratio.detach(), unclipped.detach(), clipped.detach(), kl.detach()
    return LossParts(
        loss=loss,
        policy=float(((-torch.minimum(unclipped, clipped)) * mask).sum() / n),
        kl=float((kl * mask).sum() / n),
        clip_fraction=float((((ratio - 1.0).abs() > clip).float() * mask).sum() / n),
        ratio_mean=float((ratio * mask).sum() / n),
    )


def padded_loss(model: torch.nn.Module, samples: Sequence[Sample], pad_id: int, *, clip: float = 0.2) -> LossParts:
    """The minibatch's clipped loss in one padded forward with logits at every position.

    ``parlswarm.parl.train.update`` computed it so up to stop 24 and now goes row by row (one
    row's graph at a time, logits of the completion only); this plain form is what the update
    is tested against and benchmarked beside. The samples' old log-probabilities are taken
    first, from the model as it is.
    """
    ids, attention, mask = batch_tensors(samples, pad_id)
    with torch.no_grad():
        keep_old_logprobs(samples, token_logprobs(model, ids, attention))
    advantages = torch.tensor([s.advantage for s in samples])
    return grpo_loss(token_logprobs(model, ids, attention), pad_old_logprobs(samples, ids.shape[1]), advantages, mask, clip=clip)
