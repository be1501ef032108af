"""A scripted multimodal policy for ui2code: exercises the whole pipeline without a model.

It replays a script (``benchmarks/ui2code/scripted/<page>.json``, written by the benchmark
generator): region boxes, a flawed first draft of every region, and its exact fix. The
replies depend on the messages, as a model's would: the orchestrator creates a section
writer, assigns every region with its crop in one turn, assembles, then reads the
per-section scores of each round and assigns fixes for the worst sections not yet fixed,
until ``assemble_page`` says stop or nothing is left to fix. A sub-agent writes the version
its prompt asks for, and refuses when its crop did not arrive.

What it measures is the pipeline (parallel regions, rendering, scoring, refinement), not
any model's skill: the fixes are the reference's own sections. Use it as
``--model scripted-ui2code:FILE``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from parlswarm import prompts
from parlswarm.models.base import ModelSpecError
from parlswarm.models.registry import ModelOptions, register
from parlswarm.models.scripted import Reply, ScriptedModel
from parlswarm.types import AssistantMessage, ImagePart, Message, ToolMessage, UserMessage, content_text

WRITER = "section-writer"
_SECTION_LINE = re.compile(r"^- (?P<name>[\w-]+): (?P<score>[0-9.]+)", re.M)


class ScriptRegion(BaseModel):
    name: str
    box: list[int]
    draft: str
    final: str
    flaws: list[str] = []


class UI2CodeScript(BaseModel):
    page: str
    width: int
    title: str
    css: str
    regions: list[ScriptRegion]
    note: str = ""


def load_script(path: str | Path) -> UI2CodeScript:
    path = Path(path)
    try:
        return UI2CodeScript.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ModelSpecError(f"ui2code script not found: {path}") from None
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ModelSpecError(f"ui2code script {path} is not valid: {str(exc).splitlines()[0]}") from None


def _call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


class ScriptedUI2Code:
    """The reply policy (see the module docstring); give it to :class:`ScriptedModel`."""

    def __init__(self, script: UI2CodeScript, fixes_per_round: int = 2) -> None:
        self.script = script
        self.fixes_per_round = fixes_per_round
        self.regions = {r.name: r for r in script.regions}

    def __call__(self, messages: Sequence[Message]) -> Reply:
        first = next((m for m in messages if isinstance(m, UserMessage)), None)
        if first is not None and content_text(first.content).startswith("Section:"):
            return self._section_writer(messages, first)
        return self._orchestrator(messages)

    # -- the section writer -------------------------------------------------------------------

    def _section_writer(self, messages: Sequence[Message], first: UserMessage) -> Reply:
        text = content_text(first.content)
        name = re.search(r"^Section: ([\w-]+)", text, re.M)
        version = re.search(r"^Version: (draft|final)", text, re.M)
        if name is None or version is None or name.group(1) not in self.regions:
            return "error: the prompt names no section of this script"
        has_crop = isinstance(first.content, list) and any(isinstance(p, ImagePart) for p in first.content)
        if not has_crop:
            return f"error: no crop of section '{name.group(1)}' arrived with the task"
        if not any(isinstance(m, AssistantMessage) for m in messages):
            region = self.regions[name.group(1)]
            return {"tool_calls": [_call("write_section", {"name": region.name, "html": getattr(region, version.group(1))})]}
        return f"Section {name.group(1)} written ({version.group(1)})."

    # -- the orchestrator ---------------------------------------------------------------------

    def _assign(self, names: Sequence[str], version: str) -> Reply:
        calls = []
        for name in names:
            region = self.regions[name]
            x0, y0, x1, y1 = region.box
            prompt = (
                f"Section: {name}\nVersion: {version}\n"
                f"Write the '{name}' section of the page, {x1 - x0}x{y1 - y0} pixels, as shown in your crop."
            )
            calls.append(_call("assign_task", {"agent": WRITER, "prompt": prompt, "image": f"input[{x0},{y0},{x1},{y1}]"}))
        return {"tool_calls": calls}

    def _orchestrator(self, messages: Sequence[Message]) -> Reply:
        turns = [m for m in messages if isinstance(m, AssistantMessage)]
        if not turns:
            system_prompt = prompts.load("ui2code_section")
            return {"tool_calls": [_call("create_subagent", {"name": WRITER, "system_prompt": system_prompt, "tools": ["write_section"]})]}
        last_calls = [c.function.name for c in turns[-1].tool_calls or []]
        if last_calls == ["create_subagent"]:
            return self._assign([r.name for r in self.script.regions], "draft")
        if last_calls and all(n == "assign_task" for n in last_calls):
            order = [r.name for r in self.script.regions]
            return {"tool_calls": [_call("assemble_page", {"order": order, "css": self.script.css, "title": self.script.title})]}
        if last_calls == ["assemble_page"]:
            result = content_text(next(m for m in reversed(messages) if isinstance(m, ToolMessage)).content)
            rounds = sum(1 for t in turns if [c.function.name for c in t.tool_calls or []] == ["assemble_page"])
            if "STOP:" in result or result.startswith("error"):
                return self._answer(rounds, result)
            fixed = set()
            for t in turns:
                for c in t.tool_calls or []:
                    if c.function.name == "assign_task" and "Version: final" in c.function.arguments:
                        fixed.add(json.loads(c.function.arguments)["prompt"].split("\n")[0].removeprefix("Section: "))
            worst = [m.group("name") for m in sorted(_SECTION_LINE.finditer(result), key=lambda m: float(m.group("score")))]
            todo = [n for n in worst if n in self.regions and n not in fixed][: self.fixes_per_round]
            if todo:
                return self._assign(todo, "final")
            return self._answer(rounds, result)
        return self._answer(0, "")

    def _answer(self, rounds: int, last_result: str) -> str:
        score = re.search(r"overall ([0-9.]+)", last_result)
        tail = f"; last overall score {score.group(1)}" if score else ""
        return (
            f"Rebuilt page {self.script.page} from {len(self.script.regions)} sections in {rounds} round(s){tail}. "
            "(Scripted replay: drafts and fixes come from the script, not from a model.)"
        )


def scripted_ui2code_model(path: str | Path) -> ScriptedModel:
    script = load_script(path)
    return ScriptedModel(ScriptedUI2Code(script), name=f"scripted-ui2code:{script.page}")


def _factory(arg: str, options: ModelOptions) -> ScriptedModel:
    if not arg:
        raise ModelSpecError("scripted-ui2code needs a script file: scripted-ui2code:benchmarks/ui2code/scripted/PAGE.json")
    return scripted_ui2code_model(arg)


register("scripted-ui2code", _factory, "scripted-ui2code:FILE (replays a ui2code script; tests and demos)")
