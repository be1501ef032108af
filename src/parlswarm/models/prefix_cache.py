"""Keys and values of prompts already decoded, kept so that a later prompt skips their prefill.

An agent's next prompt repeats its last one up to what happened since: the system prompt, the
task and the earlier turns are the same tokens again, and prefilling them again is work thrown
away (a serial SmolLM2 episode prefills thousands of tokens eight times; on the two CPU cores
that is a sixth of its time, decoding the rest: docs/local-model.md, "Measured").
:class:`~parlswarm.models.local.LocalModel` keeps here, after each decode, the keys and
values of every row's tokens (prompt and reply); a new prompt takes the entry it shares the
longest token prefix with and prefills only the rest.

What is reused is exact up to floating-point order: the same tokens at the same positions with
the same weights give the same keys and values, but a prefill split in two sums in another order
than one in one go, so logits can differ in the last bits and a near-tie of greedy decoding can
go the other way (``prefix_cache_bytes=0`` turns reuse off and decodes exactly as before).

Context folding (``keep_tool_results``) rewrites an older tool result as ``(folded)``, so a
folded conversation shares its prefix only up to the first result folded since the last turn
(with ``fold_tool_calls``, up to the first tool call folded: the previous turn's).

Entries live on the model's device, are evicted least recently used within a byte budget, and
are all dropped when the weights change (the owner checks; PARL updates the policy between
rollouts). An entry that a prompt has taken up is dropped once the longer entry of that prompt
is stored: the new one holds the shared prefix too, and what the old one held beyond it was
the part the conversation rewrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

# Keys and values of one layer for one sequence: ([kv_heads, tokens, head_dim], same).
LayerKV = tuple[torch.Tensor, torch.Tensor]


@dataclass(eq=False)
class PrefixEntry:
    """The token ids of one decoded sequence and their keys and values, layer by layer."""

    ids: torch.Tensor  # 1-D, on the CPU
    layers: list[LayerKV]
    nbytes: int


def common_prefix(a: torch.Tensor, b: torch.Tensor) -> int:
    """How many leading tokens two 1-D id tensors share."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    differ = (a[:n] != b[:n]).nonzero()
    return int(differ[0]) if len(differ) else n


class PrefixCache:
    """Entries of decoded sequences within ``max_bytes``; ``max_bytes=0`` keeps nothing."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"prefix cache budget must be at least 0 bytes, not {max_bytes}")
        self.max_bytes = max_bytes
        self._entries: list[PrefixEntry] = []  # least recently used first
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def match(self, prompt: Sequence[int]) -> tuple[PrefixEntry | None, int]:
        """The entry sharing the longest prefix with ``prompt`` and how many tokens of it to reuse.

        At most ``len(prompt) - 1``: the prompt's last token is always computed, its logits
        pick the first new token.
        """
        if not self._entries or len(prompt) < 2:
            return None, 0
        ids = torch.tensor(prompt, dtype=torch.long)
        best, shared = None, 0
        for entry in reversed(self._entries):  # on a tie the most recent wins
            n = common_prefix(ids, entry.ids)
            if n > shared:
                best, shared = entry, n
        if best is None:
            return None, 0
        self._entries.remove(best)
        self._entries.append(best)
        return best, min(shared, len(prompt) - 1)

    def add(self, ids: Sequence[int], layers: list[LayerKV]) -> None:
        """Keep ``layers`` (each ``[kv_heads, len(ids), head_dim]``) for ``ids``, evicting the oldest over budget."""
        nbytes = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in layers)
        if not self.enabled or nbytes > self.max_bytes or len(ids) == 0:
            return
        self._entries.append(PrefixEntry(torch.tensor(list(ids), dtype=torch.long), layers, nbytes))
        self.nbytes += nbytes
        while self.nbytes > self.max_bytes:
            self.nbytes -= self._entries.pop(0).nbytes

    def discard(self, entry: PrefixEntry) -> None:
        if entry in self._entries:
            self._entries.remove(entry)
            self.nbytes -= entry.nbytes

    def clear(self) -> None:
        self._entries.clear()
        self.nbytes = 0


__all__ = ["LayerKV", "PrefixCache", "PrefixEntry", "common_prefix"]
