"""The LLM parts of WideSearch's scoring, done by any parlswarm :class:`Model`.

WideSearch asks its judge (GPT-4.1 there) three things: to map the response's column
names to the required ones when they differ, to align key values of the response with the
gold's ("USA" with "United States"), and to grade ``llm_judge`` columns 0/1 per cell
against a criterion in words. A :class:`Judge` does the same with the model it is given.

A reply that cannot be read maps nothing and grades nothing: the cells it should have
graded stay *unscored* and the score says so, rather than counting them wrong as
WideSearch does.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Any

from parlswarm.models.base import Model, ModelError
from parlswarm.prompts import load as load_prompt
from parlswarm.types import UserMessage

log = logging.getLogger(__name__)

_JSON_BLOCK = re.compile(r"```json\s*(\{.*?\})\s*```", re.DOTALL)
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def parse_json_object(text: str | None) -> dict[str, Any] | None:
    """The last ```json block's object in ``text``, else the text's outermost {...}, else None."""
    if not text:
        return None
    candidates = _JSON_BLOCK.findall(text)[::-1]
    whole = _JSON_OBJECT.search(text)
    if whole:
        candidates.append(whole.group(0))
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _score_value(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value) if value in (0, 1) else None
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return float(value.strip())
    return None


class JudgeError(Exception):
    """The judge gave no usable answer (the model failed, or its reply had no JSON object)."""


class Judge:
    """Asks ``model`` the questions WideSearch asks its LLM judge."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.calls = 0

    @property
    def name(self) -> str:
        return self.model.name

    async def _ask(self, prompt: str, what: str) -> dict[str, Any]:
        self.calls += 1
        try:
            response = await self.model.complete([UserMessage(content=prompt)], [])
        except ModelError as exc:
            log.warning("judge %s failed: %s", self.name, exc)
            raise JudgeError(f"judge {self.name} failed on {what}: {exc}") from None
        reply = parse_json_object(response.message.content)
        if reply is None:
            raise JudgeError(f"judge {self.name} gave no JSON object for {what}")
        return reply

    async def align(
        self, response: Sequence[str], reference: Sequence[str], what: str = "alignment", one_to_one: bool = True
    ) -> dict[str, str]:
        """Map entries of ``response`` to the entries of ``reference`` that mean the same.

        Only pairs whose two sides are entries of the lists count, so a confused reply
        cannot invent values; with ``one_to_one`` (column names) each reference entry is
        taken at most once (first come).
        Raises :class:`JudgeError` when the judge gives no usable answer.
        """
        if not response or not reference:
            return {}
        prompt = (
            load_prompt("judge_align")
            .replace("{response}", json.dumps(list(response), ensure_ascii=False))
            .replace("{reference}", json.dumps(list(reference), ensure_ascii=False))
        )
        reply = await self._ask(prompt, what)
        allowed_from, allowed_to = set(response), set(reference)
        mapping: dict[str, str] = {}
        taken: set[str] = set()
        for origin, target in reply.items():
            target = str(target)
            if origin in allowed_from and target in allowed_to and not (one_to_one and target in taken):
                mapping[origin] = target
                taken.add(target)
        return mapping

    async def grade(
        self, pairs: Sequence[tuple[str, str]], criterion: str | None, what: str = "grading"
    ) -> list[float | None]:
        """0/1 for each (response, target) pair under ``criterion``; None where the reply has none.

        Raises :class:`JudgeError` when the judge gives no usable answer at all.
        """
        if not pairs:
            return []
        items = {f"idx_{i}": {"response": r, "target": t} for i, (r, t) in enumerate(pairs)}
        prompt = (
            load_prompt("judge_cells")
            .replace("{criterion}", str(criterion or "The response states the same fact as the target."))
            .replace("{items}", json.dumps(items, ensure_ascii=False, indent=1))
        )
        reply = await self._ask(prompt, what)
        return [_score_value(reply.get(f"idx_{i}")) for i in range(len(pairs))]


__all__ = ["Judge", "JudgeError", "parse_json_object"]
