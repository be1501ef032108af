"""The world's tools: ``search``, ``open_page`` and ``find``, built with the project's ``@tool``;
and, on request, ``check``.

Every call is one tool call of one step; ``open_page`` serves long documents a page at a
time, so reading a long section costs more steps than reading a short one. ``find`` is the
browser's find-in-page (as in the ``search``/``open``/``find`` browsing tools of OpenAI's
gpt-oss): the entries of one document that mention some words, so an agent that knows what
it wants reads a few lines instead of whole pages. ``check`` is a calculator for a task's
filter: whether a number the agent read is above, below or exactly a threshold. It knows
nothing of the world; the agent reads the number and copies the condition from its task.
"""

from __future__ import annotations

import os
import re

from parlswarm.tools import ToolError, Toolset, tool
from parlswarm.world.fields import format_number
from parlswarm.world.world import World

MAX_K = 20
_NUMBER = r"-?\d[\d,]*(?:\.\d+)?"
_VALUE = re.compile(rf"^\s*({_NUMBER})")
_CONDITION = re.compile(rf"^\s*(?:is\s+)?(above|below|exactly)\s+({_NUMBER})", re.I)


def check_number(value: str, condition: str) -> str:
    """``yes: 1885 is above 400`` or ``no: 1885 is not below 400`` for ``check(value, condition)``.

    ``value`` is a number as plain digits (thousands separators and a unit after it are
    allowed); ``condition`` is ``above N``, ``below N`` or ``exactly N``, as a task's filter
    writes it (``below 400 km``, ``above 20,000,000``, ``below 50%``)."""
    v = _VALUE.match(value)
    if v is None:
        raise ToolError(f"value must be a number such as 1885 or 62.3, not {value!r}")
    c = _CONDITION.match(condition)
    if c is None:
        raise ToolError(f"condition must read 'above N', 'below N' or 'exactly N' (e.g. 'below 400 km'), not {condition!r}")
    number, op, threshold = float(v.group(1).replace(",", "")), c.group(1).lower(), float(c.group(2).replace(",", ""))
    holds = number > threshold if op == "above" else number < threshold if op == "below" else number == threshold
    shown = f"{format_number(number)} is {'' if holds else 'not '}{op} {format_number(threshold)}"
    return f"{'yes' if holds else 'no'}: {shown}"


def world_tools(world: World, check: bool = False) -> Toolset:
    """``search``, ``open_page`` and ``find`` over ``world``'s documents (deterministic: the world does not
    change during a run); with ``check``, the filter calculator as well. It is asked for, not on by
    default: a tool in the toolset is a line in every agent's prompt, and models trained without it
    read a prompt they never saw."""

    @tool(deterministic=True)
    async def search(query: str, k: int = 5) -> list[dict[str, str]]:
        """Search the pages of the World Factbook (an offline copy) with keywords.

        Returns up to k hits as [{doc_id, title, snippet}]. Region index pages list the
        countries and territories of a region; each place has one page per section
        (doc id CODE/SECTION, e.g. fr/government).

        Args:
            query: Keywords, e.g. "France capital" or "Europe countries and territories".
            k: How many hits to return (1 to 20).
        """
        if not 1 <= k <= MAX_K:
            raise ToolError(f"k must be between 1 and {MAX_K}, not {k}")
        if not query.strip():
            raise ToolError("query must not be empty")
        hits = world.search(query, k)
        return [h.model_dump() for h in hits]

    @tool(deterministic=True)
    async def open_page(doc_id: str, page: int = 1) -> str:
        """Read a document of the World Factbook by its doc_id, one page at a time.

        A page holds a few thousand characters; the result says how many pages the
        document has and how to open the next one.

        Args:
            doc_id: A doc id from search results or an index page, e.g. "fr/government".
            page: Which page to read, from 1.
        """
        try:
            return world.open_page(doc_id, page)
        except (KeyError, IndexError) as exc:
            raise ToolError(str(exc.args[0])) from None

    @tool(deterministic=True)
    async def find(doc_id: str, text: str) -> str:
        """Find the entries of a document that mention some words (like find-in-page).

        Searches every page of the document; entries whose heading mentions the words come
        first (at most 3 entries). A place code alone searches all of the place's sections.

        Args:
            doc_id: A doc id from search results or an index page, e.g. "fr/people-and-society",
                or a place code, e.g. "fr", for every section of that place.
            text: Words to look for, e.g. "Population" or "Capital".
        """
        try:
            return world.find(doc_id, text)
        except KeyError as exc:
            raise ToolError(str(exc.args[0])) from None
        except ValueError as exc:
            raise ToolError(str(exc)) from None

    return Toolset([search, open_page, find]) + (check_toolset() if check else Toolset())


def check_toolset() -> Toolset:
    """``check`` alone (``--tools check``): it needs no world, so a model can be offered it beside any tools."""

    @tool(deterministic=True, name="check")
    async def check_tool(value: str, condition: str) -> str:
        """Check a number against a condition, such as a task's filter: answers yes or no.

        Args:
            value: The number as read, e.g. "1885" or "62.3".
            condition: "above N", "below N" or "exactly N", as the task writes it, e.g. "below 400 km".
        """
        return check_number(value, condition)

    return Toolset([check_tool])


def trained_with_check(*models: object) -> bool:
    """Whether one of ``models`` was trained with the check tool: a local model whose settings say so
    (``LocalSettings.check_tool``, written by SFT from ``data.check_tool``), also inside a wrapper
    (a cache, a recorder: anything that keeps the model it wraps as ``inner``)."""
    for model in models:
        while model is not None:
            if getattr(getattr(model, "settings", None), "check_tool", False) is True:
                return True
            model = getattr(model, "inner", None)
    return False


def offer_check(tools: Toolset, *models: object) -> Toolset:
    """``tools`` with ``check`` added when they are the world's (they hold ``find``) and one of ``models``
    was trained with it: such a model's notes ask the tool, and without it every filtered task fails."""
    if "find" in tools.names() and "check" not in tools.names() and trained_with_check(*models):
        return tools + check_toolset()
    return tools


def default_toolset() -> Toolset:
    """The ``world`` tool set of ``--tools world``: seed from ``$PARLSWARM_WORLD_SEED`` (0)."""
    raw = os.environ.get("PARLSWARM_WORLD_SEED", "0")
    try:
        seed = int(raw)
    except ValueError:
        raise ValueError(f"PARLSWARM_WORLD_SEED must be a whole number, not {raw!r}") from None
    return world_tools(World.load(seed))
