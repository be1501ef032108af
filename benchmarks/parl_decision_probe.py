"""How serial is an orchestrator? Its probability of instantiating sub-agents at the decision point.

For each task, the scripted expert (swarm style) is run through the runtime up to the turn
where it creates its sub-agent: the orchestrator has found the region's places and must
now choose between reading pages itself (the serial expert's next action: an ``open_page``
call, or ``find`` calls with ``--reader find``) and delegating (the ``create_subagent``
call). The probe scores both continuations under the policy with teacher forcing and prints,
per policy, the median log-probability of each and the mean parallel share
``P(par) / (P(par) + P(ser))``.

PARL's instantiation reward can only act on instantiations the policy samples: a share near
zero means no episode explores parallelism, every group's reward is flat, and GRPO has no
gradient (see docs/parl.md).

    python benchmarks/parl_decision_probe.py --policy runs/parl-exp/warm_start_model [--policy OTHER] [--tasks 12] \
        [--reader find] [--notes verbatim]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
from collections.abc import Sequence
from typing import Any

import torch

from parlswarm.models.chat_format import NANO_END, TOOL_CALL_OPEN, render_assistant
from parlswarm.models.local import LocalModel
from parlswarm.models.local_settings import Sampling
from parlswarm.models.scripted import reply_to_message
from parlswarm.parl.grpo import Sample, batch_tensors, token_logprobs
from parlswarm.parl.notes import PLAIN_NOTE_STYLES, NoteStyle, NotingExpert
from parlswarm.parl.rollout import TaskCase
from parlswarm.swarm import Swarm
from parlswarm.types import AssistantMessage, Budgets, Message, ModelResponse, ToolSpec
from parlswarm.world.expert import ExpertModel, Reader


class DecisionCatcher:
    """The swarm expert as orchestrator, remembering the context of its create_subagent turn."""

    def __init__(self, reader: Reader = "pages", notes: NoteStyle | None = None) -> None:
        self.expert: Any = ExpertModel(reader=reader) if notes is None else NotingExpert(ExpertModel(reader=reader), notes)
        self.name = "scripted expert (probe)"
        self.decision: tuple[list[Message], list[ToolSpec], AssistantMessage] | None = None

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelResponse:
        response = await self.expert.complete(messages, tools)
        calls = response.message.tool_calls or []
        if self.decision is None and any(c.function.name == "create_subagent" for c in calls):
            self.decision = (list(messages), list(tools), response.message)
        return response


def continuation(policy: LocalModel, context: list[Message], tools: list[ToolSpec], reply: AssistantMessage) -> Sample:
    """The reply as the policy would generate it after the context: its text, then its end-of-turn token."""
    prompt = policy.encode(policy.render(context, tools))
    end = sorted(policy.stop_ids)[0] if len(policy.stop_ids) == 1 else policy.tokenizer.convert_tokens_to_ids(NANO_END)
    return Sample(prompt_ids=prompt, completion_ids=policy.encode(render_assistant(reply)) + [end], old_logprobs=[])


def decision(policy: LocalModel, context: list[Message], tools: list[ToolSpec], reply: AssistantMessage) -> Sample:
    """Only the start of the reply that names the tool: the decision itself, not its arguments."""
    prompt = policy.encode(policy.render(context, tools))
    name = (reply.tool_calls or [])[0].function.name
    text = render_assistant(reply)  # the turn's notes, if any, then the first call up to its name
    opening = f'{TOOL_CALL_OPEN}{{"name": "{name}"'
    cut = text.index(opening) + len(opening)
    # The whole turn's own tokens up to the one that completes the name: the cut text alone
    # can tokenize differently (a closing quote merges with the comma after it), and a token
    # sequence the policy never writes would understate the decision's probability.
    encoded = policy.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    upto = next(i for i, (_, end) in enumerate(encoded["offset_mapping"]) if end >= cut) + 1
    return Sample(prompt_ids=prompt, completion_ids=list(encoded["input_ids"][:upto]), old_logprobs=[])


def share(lp: float, ls: float) -> float:
    top = max(lp, ls)
    return math.exp(lp - top) / (math.exp(lp - top) + math.exp(ls - top))


def logprob(policy: LocalModel, sample: Sample) -> float:
    ids, attention, mask = batch_tensors([sample], policy.pad_id)
    with torch.no_grad():
        logp = token_logprobs(policy.model, ids, attention, wanted=mask)
        return float((logp * mask.to(logp.device)).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", action="append", required=True, help="a save_pretrained folder (repeatable)")
    parser.add_argument("--world-seed", type=int, default=11)
    parser.add_argument("--tasks", type=int, default=12)
    parser.add_argument("--min-rows", type=int, default=5)
    parser.add_argument("--max-rows", type=int, default=8)
    parser.add_argument("--reader", choices=["pages", "find"], default="pages", help="the expert's reader (serial action: open_page or find)")
    parser.add_argument("--notes", choices=PLAIN_NOTE_STYLES, default=None,
                        help="the expert writes notes in this style (the policies' data.note_style), so that both "
                             "continuations start as the policy learnt them; none by default")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from parlswarm.world.factbook import Factbook
    from parlswarm.world.tasks import make_tasks
    from parlswarm.world.tools import world_tools
    from parlswarm.world.world import World

    real = Factbook.load()
    world = World.load(args.world_seed, base=real)
    tools = world_tools(world)
    cases = [TaskCase.from_world(t, args.world_seed) for t in make_tasks("train", world.factbook, real, args.world_seed)]
    cases = [c for c in cases if args.min_rows <= c.rows <= args.max_rows][: args.tasks]
    decisions = []
    for case in cases:
        catcher = DecisionCatcher(args.reader, args.notes)
        asyncio.run(Swarm(catcher, subagent_model=ExpertModel(reader=args.reader), tools=tools, budgets=Budgets(max_critical_steps=None)).run(case.task.query))
        if catcher.decision is None:
            continue
        context, specs, parallel = catcher.decision
        serial_reply = ExpertModel(style="serial", reader=args.reader).decide(context, [t.name for t in specs])
        serial = reply_to_message(serial_reply, sum(1 for m in context if m.role == "assistant"))
        if args.notes is not None:  # the same notes as the parallel turn: only the calls differ
            serial = serial.model_copy(update={"content": parallel.content})
        decisions.append((context, specs, parallel, serial))
    print(f"{len(decisions)} decision points (world seed {args.world_seed}, train tasks of {args.min_rows}-{args.max_rows} rows)")
    print(f"{'policy':40}{'log P(par)':>11}{'log P(ser)':>11}{'share':>8}{'log P(create)':>15}{'log P(serial)':>13}{'share':>8}")
    for path in args.policy:
        policy = LocalModel.from_pretrained(path, sampling=Sampling(temperature=1.0))
        rows = []
        for context, specs, parallel, serial in decisions:
            lp = logprob(policy, continuation(policy, context, specs, parallel))
            ls = logprob(policy, continuation(policy, context, specs, serial))
            dp = logprob(policy, decision(policy, context, specs, parallel))
            ds = logprob(policy, decision(policy, context, specs, serial))
            rows.append((lp, ls, share(lp, ls), dp, ds, share(dp, ds)))
        # Medians of the log-probabilities: one decision point whose notes the policy cannot
        # write (a long places list) scored -900 and swamped the mean of eight; shares are bounded.
        m = [(statistics.fmean if i in (2, 5) else statistics.median)([r[i] for r in rows]) for i in range(6)]
        print(f"{path[-40:]:40}{m[0]:11.1f}{m[1]:11.1f}{m[2]:8.4f}{m[3]:15.2f}{m[4]:13.2f}{m[5]:8.4f}")
    print("share = P(parallel) / (P(parallel) + P(serial)), averaged over decision points (log P: medians); the first "
          "three columns score the whole turn, the last three only the tool name.")


if __name__ == "__main__":
    main()
