"""Greedy turns at expert states: does the model's own turn match the expert's, and where not?

Between teacher forcing (every token given: ``nano_copy_probe.py``) and free running
(``nano_eval.py``): the conversation up to a turn is the expert's, the turn is the model's
own, decoded greedily. For each state drawn from the expert traces of one world (sub-agent
and single-mode turns of an SFT config's recipe) the script prints where the model's turn
first leaves the expert's, with some context, and counts the states where it never does.

    python benchmarks/nano_turn_probe.py --model runs/sft-nano-spaces/final [--config configs/sft-nano-copy.yaml] [--world-seed 900] [--subagent 12] [--serial 6]
"""

from __future__ import annotations

import argparse
import asyncio
import random
from typing import Any

from expert_traces import add_trace_arguments, expert_traces

from parlswarm.models.local import LocalModel
from parlswarm.parl.relabel import same_turn
from parlswarm.types import AssistantMessage


def flat(message: AssistantMessage) -> str:
    """A turn as one line: its text, then each call as ``<name arguments>``."""
    calls = "".join(f"<{c.function.name} {c.function.arguments}>" for c in message.tool_calls or [])
    return (message.content or "") + calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a save_pretrained folder")
    add_trace_arguments(parser, "configs/sft-nano-copy.yaml", split="dev")
    parser.add_argument("--subagent", type=int, default=12, help="sub-agent states")
    parser.add_argument("--serial", type=int, default=6, help="single-mode states")
    parser.add_argument("--max-new-tokens", type=int, default=200)
    args = parser.parse_args()

    lm = LocalModel.from_pretrained(args.model)
    lm.sampling = lm.sampling.model_copy(update={"temperature": 0.0, "max_new_tokens": args.max_new_tokens})
    conversations = expert_traces(args)
    rng = random.Random(args.seed)
    states: list[tuple[str, list[Any], list[Any], AssistantMessage]] = []
    for kind, n in (("subagent", args.subagent), ("serial", args.serial)):
        pool = [c for c in conversations if c.kind == kind]
        for conv in rng.sample(pool, min(n, len(pool))):
            turn = rng.choice([i for i, m in enumerate(conv.messages) if m.role == "assistant"])
            states.append((kind, conv.messages[:turn], conv.tools, conv.messages[turn]))  # type: ignore[arg-type]

    async def decode() -> list[Any]:
        return await asyncio.gather(*(lm.complete(m, tools) for _, m, tools, _ in states), return_exceptions=True)

    agreed = failed = 0
    for (kind, _, _, gold), out in zip(states, asyncio.run(decode())):
        if isinstance(out, Exception):
            failed += 1
            print(f"{kind}: not decoded: {out}")
            continue
        same = same_turn(gold, out.message)
        agreed += same
        g, o = flat(gold), flat(out.message)
        k = next((i for i, (a, b) in enumerate(zip(g, o)) if a != b), min(len(g), len(o)))
        print(f"{kind}: {'same turn' if same else f'leaves the expert at character {k} of {len(g)}'}")
        if not same:
            print(f"  expert {g[max(0, k - 60) : k + 60]!r}\n  model  {o[max(0, k - 60) : k + 60]!r}")
    print(f"\n{lm.name}: the model's turn was the expert's at {agreed} of {len(states) - failed} states ({failed} not decoded)")


if __name__ == "__main__":
    main()
