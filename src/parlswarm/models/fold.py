"""Fold a chain of stacked LoRA adapters into one adapter on the chain's first base.

A run under LoRA trains a new adapter on its starting model; when that model is itself an
adapter (merged into its base to decode), the result is a chain: a PARL checkpoint on the
SFT warm start on an earlier SFT round on ``hf-gguf:smollm2``. Only the last base is a spec a
fresh install resolves, so the chain ships as one adapter on it.

Each adapter ``i`` adds ``s_i · B_i · A_i`` to a linear layer's weight (``s_i = alpha_i / r_i``),
so the chain adds their sum, and one adapter of rank ``Σ r_i`` holds it exactly: the ``A_i``
stacked, the ``s_i · B_i`` side by side, at scale 1 (``alpha = r``). Ranks add up, and so do
bytes; ``rank=k`` keeps the best rank-``k`` approximation of each layer's sum instead (by SVD,
through the factors, never the full matrix) and reports how much of the update it kept.

The best approximation of the sum is the best in squared error, not in behaviour: a PARL run's
adapter is a small share of its chain's update, about what a truncation drops, and a fold can
keep the chain and lose the run. ``keep_last`` keeps the last adapter (the run being shipped)
whole and approximates only the adapters before it, at ``k`` less its rank; every fold reports
how much of the last adapter's update it kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from parlswarm.models.adapter import ADAPTER_CONFIG, ADAPTER_INT8, ADAPTER_WEIGHTS, adapter_tensors, has_adapter
from parlswarm.models.base import ModelSpecError
from parlswarm.models.local_settings import SETTINGS_FILE, LocalSettings, read_settings
from parlswarm.models.local_specs import check_base, local_path
from parlswarm.models.nano import write_settings

_A, _B = ".lora_A.weight", ".lora_B.weight"


@dataclass(frozen=True)
class Folded:
    """One adapter's tensors (peft's names) and rank, and the share of the chain's update it holds."""

    tensors: dict[str, torch.Tensor]
    rank: int
    # Share of the summed update's squared Frobenius norm kept, over all layers and in the
    # worst layer: 1.0 (to rounding) when folded exactly.
    kept: float
    worst_kept: float
    exact: bool  # every layer kept all of its singular values
    # Share of the last adapter's update (squared Frobenius norm, over all layers) the fold
    # holds: what lies in the kept row and column spaces of each layer, or all of it when kept whole.
    last_kept: float


def adapter_chain(folder: str | Path, *, stop_at: Callable[[str], bool] | None = None) -> tuple[list[Path], LocalSettings]:
    """The adapters ``folder`` stacks on, earliest first, ending with it; and the earliest one's settings.

    The earliest one's ``base`` is the first that is not itself an adapter folder, or that
    ``stop_at`` accepts (a base that ships as it is). Every link is checked against the digest
    of the base it was trained on."""
    chain = [Path(folder)]
    while True:
        settings = _settings(chain[0])
        if not settings.base:
            raise ModelSpecError(f"{chain[0]} holds a LoRA adapter but {SETTINGS_FILE} names no 'base' model for it")
        check_base(chain[0], settings)
        base = local_path(settings.base)
        if not has_adapter(base) or (stop_at is not None and stop_at(settings.base)):
            return chain, settings
        if base.resolve() in {p.resolve() for p in chain} or len(chain) >= 32:
            raise ModelSpecError(f"{folder}: the chain of adapter bases loops at {base}")
        chain.insert(0, base)


def _settings(folder: Path) -> LocalSettings:
    if not has_adapter(folder):
        raise ModelSpecError(f"{folder} holds no LoRA adapter ({ADAPTER_CONFIG})")
    settings = read_settings(folder)
    if settings is None:
        raise ModelSpecError(f"{folder} holds a LoRA adapter but no {SETTINGS_FILE} naming its base")
    return settings


def _scale(folder: Path) -> float:
    config = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise ModelSpecError(f"{folder}: an adapter with per-layer ranks or alphas cannot be folded")
    if config.get("use_rslora") or config.get("use_dora"):
        raise ModelSpecError(f"{folder}: only plain LoRA adapters fold (this one uses rsLoRA or DoRA)")
    return float(config["lora_alpha"]) / float(config["r"])


def fold(adapters: list[Path], rank: int | None = None, *, keep_last: bool = False) -> Folded:
    """The update of ``adapters`` (as :func:`adapter_chain` lists them) as one adapter at scale 1.

    ``keep_last`` keeps the last adapter's factors as they are and spends the rest of ``rank``
    on the best approximation of the adapters before it."""
    if not adapters:
        raise ValueError("fold needs at least one adapter")
    if rank is not None and rank < 1:
        raise ValueError(f"rank must be at least 1, not {rank}")
    last = len(adapters) - 1
    # Per layer: the (A, s·B) factors of the adapters before the last, and the last one's.
    factors: dict[str, tuple[list[tuple[torch.Tensor, torch.Tensor]], list[tuple[torch.Tensor, torch.Tensor]]]] = {}
    for index, folder in enumerate(adapters):
        scale = _scale(folder)
        tensors = adapter_tensors(folder)
        for key, a in tensors.items():
            if not key.endswith(_A):
                continue
            layer = key[: -len(_A)]
            b = tensors.get(layer + _B)
            if b is None:
                raise ModelSpecError(f"{folder}: {layer} has lora_A but no lora_B")
            factors.setdefault(layer, ([], []))[index == last].append((a.double(), scale * b.double()))
    if not factors:
        raise ModelSpecError(f"{adapters[-1]} holds no LoRA weights")
    full = max(sum(a.shape[0] for a, _ in before + own) for before, own in factors.values())
    target = full if rank is None else rank
    last_rank = max(sum(a.shape[0] for a, _ in own) for _, own in factors.values())
    if keep_last and (target < last_rank or (last > 0 and target == last_rank)):
        raise ValueError(
            f"rank {target} cannot keep {adapters[-1]} (rank {last_rank}) whole"
            + (" and anything of the adapters before it" if last > 0 else "")
            + f": keeping it whole needs a rank above {last_rank}"
        )
    out: dict[str, torch.Tensor] = {}
    lost = total = last_in = last_total = 0.0
    worst = 1.0
    exact = True
    for layer, (before, own) in sorted(factors.items()):
        a_all, b_all = _stack(before + own)
        cut = sum(a.shape[0] for a, _ in before)  # the before adapters' rows of A, columns of B
        a_own, b_own = a_all[cut:], b_all[:, cut:]
        if keep_last:
            a_before, b_before = a_all[:cut], b_all[:, :cut]
            k = target - a_own.shape[0]
            u, s, v = _svd(a_before, b_before)
            a, b = _truncated(u, s, v, k)
            a, b = torch.cat([a, a_own]), torch.cat([b, b_own], dim=1)
            whole = _energy(a_all, b_all)
            own_in = _energy(a_own, b_own)
        else:
            k = target
            u, s, v = _svd(a_all, b_all)
            a, b = _truncated(u, s, v, k)
            whole = float((s**2).sum())
            n = min(k, s.numel())
            # The fold projects the sum onto its top-k column and row spaces, and so each part.
            own_in = float(((u[:, :n].T @ b_own) @ (a_own @ v[:n].T)).square().sum())
        layer_lost = float((s[k:] ** 2).sum())
        exact = exact and s.numel() <= k
        lost, total = lost + layer_lost, total + whole
        last_in, last_total = last_in + own_in, last_total + _energy(a_own, b_own)
        if whole > 0:
            worst = min(worst, 1 - layer_lost / whole)
        out[layer + _A] = a.float().contiguous()
        out[layer + _B] = b.float().contiguous()
    return Folded(
        tensors=out,
        rank=target,
        kept=1 - lost / total if total > 0 else 1.0,
        worst_kept=worst,
        exact=exact,
        last_kept=last_in / last_total if last_total > 0 else 1.0,
    )


def _stack(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """One (A, B) pair adding up the updates of ``pairs``: ``(Σr, in)`` and ``(out, Σr)``."""
    return torch.cat([a for a, _ in pairs]), torch.cat([b for _, b in pairs], dim=1)


def _energy(a: torch.Tensor, b: torch.Tensor) -> float:
    """``‖b @ a‖²`` (squared Frobenius norm) through the factors: trace(bᵀb · a aᵀ)."""
    return float(((b.T @ b) * (a @ a.T)).sum())


def _svd(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``b @ a = u · diag(s) · v`` through the factors, never the full matrix: ``u`` and ``v`` orthonormal, ``s`` falling."""
    if a.shape[0] == 0:
        return b[:, :0], a.new_zeros(0), a[:0]
    qb, rb = torch.linalg.qr(b)  # b @ a = qb (rb ra^T) qa^T
    qa, ra = torch.linalg.qr(a.T)
    u, s, vh = torch.linalg.svd(rb @ ra.T)
    return qb @ u, s, vh @ qa.T


def _truncated(u: torch.Tensor, s: torch.Tensor, v: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Factors (A, B) of the best rank-``k`` approximation, zero-padded to rank ``k``."""
    n = min(k, s.numel())
    root = s[:n].sqrt()  # split the singular values evenly, so float16 holds both factors well
    new_b = torch.zeros(u.shape[0], k, dtype=u.dtype)
    new_a = torch.zeros(k, v.shape[1], dtype=v.dtype)
    new_b[:, :n] = u[:, :n] * root
    new_a[:n] = root[:, None] * v[:n]
    return new_a, new_b


def write_folded(
    source: str | Path,
    dest: str | Path,
    *,
    rank: int | None = None,
    keep_last: bool = False,
    stop_at: Callable[[str], bool] | None = None,
) -> tuple[list[Path], Folded]:
    """Fold the chain ending in the adapter ``source`` into one adapter in the new folder ``dest``.

    ``dest`` gets the adapter, ``source``'s other files (tokenizer, manifest) and settings whose
    base is the chain's first base, with that base's digest. Returns the chain and the fold."""
    import shutil

    from safetensors.torch import save_file

    source, dest = Path(source), Path(dest)
    chain, first = adapter_chain(source, stop_at=stop_at)
    folded = fold(chain, rank, keep_last=keep_last)
    if dest.exists():
        raise FileExistsError(f"{dest} exists: folding writes a new folder")
    dest.mkdir(parents=True)
    for file in source.iterdir():
        if file.is_file() and file.name not in {ADAPTER_WEIGHTS, ADAPTER_INT8, ADAPTER_CONFIG, SETTINGS_FILE}:
            shutil.copy2(file, dest / file.name)
    config = json.loads((source / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    targets = sorted({layer.rsplit(".", 1)[-1] for layer in (k[: -len(_A)] for k in folded.tensors if k.endswith(_A))})
    config.update(r=folded.rank, lora_alpha=float(folded.rank), target_modules=targets, base_model_name_or_path=first.base)
    (dest / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    save_file(folded.tensors, str(dest / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    settings = _settings(source)
    write_settings(dest, settings.model_copy(update={"base": first.base, "base_digest": first.base_digest}))
    return chain, folded


def folded_record(chain: list[Path], folded: Folded) -> dict[str, object]:
    """What a manifest says of a fold: the adapters, the rank, the share of the update kept and of the last adapter's."""
    return {
        "adapters": [str(p) for p in chain],
        "rank": folded.rank,
        "kept": round(folded.kept, 6),
        "worst_layer_kept": round(folded.worst_kept, 6),
        "exact": folded.exact,
        "last_kept": round(folded.last_kept, 6),
    }


__all__ = ["Folded", "adapter_chain", "fold", "folded_record", "write_folded"]
