"""What the policy wrote in each PARL step, kept so that a step can be gone through again
without decoding it.

A run's checkpoints live on one machine's disk; its logs live in git (docs/parl.md, "What is
where"). When a run starts over because its checkpoints are gone, it repeats, seeded, the
steps it had logged, draw for draw (docs/parl.md, thirtieth and thirty-first looks), and on
two CPU cores the decoding is about half of each step. So every step also logs each
episode's policy turns to ``generations.jsonl``: per turn, a digest of the prompt and the
token ids written. A step cut from the logs (:func:`~parlswarm.parl.run_folder.trim_log`
keeps the cut lines in ``generations.dropped.jsonl``) is then *replayed*: its episodes run
through the runtime as before, but each policy turn reads back the tokens logged for that
episode and turn instead of decoding them, and the update runs on those turns as usual.

A replay is exact only while the run goes where it went before. Each replayed turn checks
that its prompt is the one logged (:class:`ReplayMismatch` otherwise, and the step is
decoded afresh); after the update the step's figures are set beside the first run's, and
any difference is said and ends replaying for the run (the trainer does both).

On another CPU the same update can come out different in its last digits (the matrix
products sum in another order; docs/parl.md, forty-fourth look), and by default that ends
replaying too. A ``tolerance`` lets a replay go on through differences that small: the turns
are still the ones logged, the weights no longer the first run's bit for bit, and whether
they answer the same is for an evaluation to say.
"""

from __future__ import annotations

import base64
import hashlib
import math
import zlib
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parlswarm.parl.rollout import Episode
from parlswarm.parl.run_folder import dropped_log, read_log

GENERATIONS = "generations.jsonl"
REPLAYED = "train/replayed"  # in metrics.jsonl, 1.0 on a step whose policy turns were read back
# How a step ran rather than what it computed (the prefix cache's reuse; the sub-agent memo's
# hits, counted since the process began): a replayed step has no reason to match its first run in these.
HOW_IT_RAN = frozenset({REPLAYED, "train/reused_prompt_share", "train/subagent_cache_hits"})


class ReplayMismatch(Exception):
    """A replayed turn's prompt is not the one logged: the run no longer goes where it went."""


def prompt_digest(prompt_ids: Sequence[int]) -> str:
    return hashlib.blake2b(array("q", prompt_ids).tobytes(), digest_size=8).hexdigest()


def pack_ids(ids: Sequence[int]) -> str:
    """Token ids as compact text for a JSON line: little-endian uint32, zlib, base64."""
    data = array("I", ids)
    if data.itemsize != 4:  # pragma: no cover - a platform whose unsigned int is not 32 bits
        raise RuntimeError("array('I') is not 32-bit here")
    return base64.b64encode(zlib.compress(data.tobytes(), 9)).decode("ascii")


def unpack_ids(text: str) -> list[int]:
    data = array("I")
    data.frombytes(zlib.decompress(base64.b64decode(text)))
    return data.tolist()


def replay_differences(first: dict[str, Any], now: dict[str, Any], tolerance: float = 0.0) -> list[str]:
    """The keys of two ``metrics.jsonl`` lines of one step whose values differ, times and
    :data:`HOW_IT_RAN` aside: a replayed step beside its first run, where exact means none.
    Two numbers differ when they are further apart than ``tolerance`` times the larger of their
    sizes and 1 (:func:`difference`)."""
    return sorted(k for k in _compared(first, now) if difference(first.get(k), now.get(k)) > tolerance)


def largest_difference(first: dict[str, Any], now: dict[str, Any]) -> float:
    """The largest :func:`difference` between two ``metrics.jsonl`` lines of one step."""
    return max((difference(first.get(k), now.get(k)) for k in _compared(first, now)), default=0.0)


def difference(a: Any, b: Any) -> float:
    """How far apart two logged values are: ``|a − b| / max(|a|, |b|, 1)`` for two numbers (relative
    for the large, absolute for those below 1, which a loss near 0 is), infinite for anything
    else that is not equal."""
    if a == b:
        return 0.0
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool) and not isinstance(b, bool):
        if math.isnan(a) or math.isnan(b):
            return 0.0 if math.isnan(a) and math.isnan(b) else math.inf
        return abs(a - b) / max(abs(a), abs(b), 1.0)
    return math.inf


def _compared(first: dict[str, Any], now: dict[str, Any]) -> set[str]:
    return {k for k in first.keys() | now.keys() if "seconds" not in k and k not in HOW_IT_RAN}


def generation_records(episodes: Sequence[Episode]) -> list[dict[str, Any]]:
    """One line of ``generations.jsonl`` per episode of a step, in the step's order (its
    ``step`` is added by the log): the policy's turns, before any subset is drawn for the update."""
    return [
        {"episode": n, "turns": [{"prompt": prompt_digest(s.prompt_ids), "prompt_tokens": len(s.prompt_ids),
                                  "output": pack_ids(s.completion_ids)} for s in ep.samples]}
        for n, ep in enumerate(episodes)
    ]


@dataclass
class Turn:
    prompt: str  # prompt_digest of the prompt the turn answered
    output_ids: list[int]


class EpisodeReplay:
    """One episode's logged policy turns, handed out in order (``output_of``, for
    :meth:`~parlswarm.models.local.LocalModel.replay_with_generation`)."""

    def __init__(self, step: int, episode: int, turns: list[Turn]) -> None:
        self.step, self.episode, self.turns = step, episode, turns
        self.used = 0

    def output_of(self, prompt_ids: list[int]) -> list[int]:
        where = f"step {self.step}, episode {self.episode + 1}, policy turn {self.used + 1}"
        if self.used >= len(self.turns):
            raise ReplayMismatch(f"{where}: the log holds {len(self.turns)} turns for this episode")
        turn = self.turns[self.used]
        if prompt_digest(prompt_ids) != turn.prompt:
            raise ReplayMismatch(f"{where}: the prompt ({len(prompt_ids)} tokens) is not the one logged")
        self.used += 1
        return turn.output_ids


def logged_generations(out: Path, steps: Sequence[int]) -> dict[int, list[list[Turn]]]:
    """The turns ``generations.dropped.jsonl`` holds for ``steps`` (the steps a run has yet to
    do): step → per episode, its turns. Where a step was cut more than once, its latest lines count; a
    step with a gap in its episodes is left out (it is decoded afresh)."""
    wanted = set(steps)
    by_step: dict[int, dict[int, list[Turn]]] = {}
    for line in read_log(dropped_log(out / GENERATIONS)):
        if line["step"] in wanted:
            turns = [Turn(t["prompt"], unpack_ids(t["output"])) for t in line["turns"]]
            by_step.setdefault(line["step"], {})[int(line["episode"])] = turns
    return {step: [episodes[n] for n in range(len(episodes))] for step, episodes in by_step.items()
            if sorted(episodes) == list(range(len(episodes)))}


def replays_for(step: int, logged: list[list[Turn]], episodes: int) -> list[EpisodeReplay] | None:
    """Replays of a step's ``episodes`` episodes, or None when the log does not hold as many."""
    if len(logged) != episodes:
        return None
    return [EpisodeReplay(step, n, turns) for n, turns in enumerate(logged)]
