"""Teacher-forced filter verdicts: does a model's ``kept`` / ``left out`` follow the task's filter?

In ``compared`` (and ``matched``) notes a look-up writes a place's filter value against the
threshold, the relation, then the verdict: ``Palau (ps): Coastline (km) = 1885 vs 0400: above:
kept``. In a look-up the nano model is asked for, every place is a gold row, so a ``left out``
there is always wrong and the look-up figure moves with how often the model says ``kept``.
This script asks the question apart from that bias: for the expert's own sub-agent turns of
one world (the config's recipe), up to each verdict, which of `` kept`` and `` left out`` does
the model find likelier? It prints, per model, the verdicts right, split by the expert's
verdict (a model that ignores the task's operator is right on about half, and says mostly one
word), and at the same lines which of `` above`` / `` below`` / `` equal`` it finds likeliest
after ``value vs threshold:`` (the comparison the verdict rests on when the model writes it).

    python benchmarks/verdict_probe.py --model runs/sft-nano-compared/final --model runs/sft-nano-starts/final [--config configs/sft-nano-compared.yaml] [--world-seed 900] [--states 40]
"""

from __future__ import annotations

import argparse
import random
import re
from collections.abc import Sequence
from typing import Any

import torch
from expert_traces import add_trace_arguments, expert_traces, probed_models

from parlswarm.models.local import LocalModel
from parlswarm.parl.sft_config import SFTConfig
from parlswarm.parl.traces import Conversation
from parlswarm.types import content_text

VERDICT = re.compile(r": (above|below|equal)(?:, wanted \w+)?:(?= (kept|left out)$)", re.M)
CHOICES = (" kept", " left out")
RELATIONS = (" above", " below", " equal")


def verdict_states(conversations: Sequence[Conversation], n: int, rng: random.Random) -> list[tuple[Conversation, int, str]]:
    """Up to ``n`` (conversation, turn, expert verdict) of sub-agent turns that write a verdict, one per turn."""
    found = []
    for conv in conversations:
        if conv.kind != "subagent":
            continue
        replies = [m for m in conv.messages if m.role == "assistant"]
        for turn, message in enumerate(replies):
            match = VERDICT.search(content_text(message.content))
            if match is not None:
                found.append((conv, turn, match.group(2)))
    return rng.sample(found, min(n, len(found)))


def log_likelihood(lm: LocalModel, prefix: list[int], continuation: list[int]) -> float:
    ids = torch.tensor([prefix + continuation])
    with torch.no_grad():
        logits = lm.model(ids).logits[0].float()
    logp = torch.log_softmax(logits[len(prefix) - 1 : -1], dim=-1)
    return float(logp.gather(1, torch.tensor(continuation).unsqueeze(1)).sum())


def likeliest(lm: LocalModel, before: str, choices: Sequence[str]) -> str:
    """Which of ``choices`` the model finds likeliest after ``before`` (stripped of its leading space)."""
    prefix = lm.encode(before)
    scores = [log_likelihood(lm, prefix, lm.encode(before + c)[len(prefix) :]) for c in choices]
    return choices[max(range(len(choices)), key=lambda i: scores[i])].strip()


def probe(lm: LocalModel, states: Sequence[tuple[Conversation, int, str]]) -> dict[str, Any]:
    """Verdicts right (by the expert's verdict) and, at the same lines, relations right (the
    relation the line writes before the verdict: the comparison of value and threshold)."""
    right = {"kept": 0, "left out": 0}
    total = {"kept": 0, "left out": 0}
    said_kept = relations_right = 0
    for conv, turn, expert in states:
        at = [i for i, m in enumerate(conv.messages) if m.role == "assistant"][turn]
        text = content_text(conv.messages[at].content)
        match = VERDICT.search(text)
        assert match is not None
        prompt = lm.render(conv.messages[:at], conv.tools)
        said = likeliest(lm, prompt + text[: match.end()], CHOICES)
        said_kept += said == "kept"
        total[expert] += 1
        right[expert] += said == expert
        relations_right += likeliest(lm, prompt + text[: match.start(1) - 1], RELATIONS) == match.group(1)
    return {
        "states": len(states),
        "relations_right": relations_right,
        "right": sum(right.values()),
        "right_when_kept": f"{right['kept']} of {total['kept']}",
        "right_when_left_out": f"{right['left out']} of {total['left out']}",
        "said_kept": said_kept,
    }


def writes_no_verdict(cfg: SFTConfig) -> str | None:
    if cfg.data.note_style in ("compared", "matched"):
        return None
    return f"note_style {cfg.data.note_style!r} writes no verdict line (compared or matched do)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="a save_pretrained folder (repeat to compare)")
    add_trace_arguments(parser, "configs/sft-nano-compared.yaml")
    parser.add_argument("--states", type=int, default=40)
    args = parser.parse_args()

    conversations = expert_traces(args, writes_no_verdict)
    states = verdict_states(conversations, args.states, random.Random(args.seed))
    if not states:
        raise SystemExit(f"world {args.world_seed} ({args.split}): no sub-agent turn writes a verdict")
    for folder, lm in probed_models(args.model):
        report = probe(lm, states)
        print(
            f"{folder}: verdicts right {report['right']} of {report['states']} "
            f"(expert kept: {report['right_when_kept']}; expert left out: {report['right_when_left_out']}); "
            f"said kept {report['said_kept']}; relations right {report['relations_right']} of {report['states']}"
        )


if __name__ == "__main__":
    main()
