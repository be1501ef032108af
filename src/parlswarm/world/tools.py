"""The world's tools: ``search``, ``open_page`` and ``find``, built with the project's ``@tool``.

Every call is one tool call of one step; ``open_page`` serves long documents a page at a
time, so reading a long section costs more steps than reading a short one. ``find`` is the
browser's find-in-page (as in the ``search``/``open``/``find`` browsing tools of OpenAI's
gpt-oss): the entries of one document that mention some words, so an agent that knows what
it wants reads a few lines instead of whole pages.
"""

from __future__ import annotations

import os

from parlswarm.tools import ToolError, Toolset, tool
from parlswarm.world.world import World

MAX_K = 20


def world_tools(world: World) -> Toolset:
    """``search``, ``open_page`` and ``find`` over ``world``'s documents (deterministic: the world does not
    change during a run)."""

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

    return Toolset([search, open_page, find])


def default_toolset() -> Toolset:
    """The ``world`` tool set of ``--tools world``: seed from ``$PARLSWARM_WORLD_SEED`` (0)."""
    raw = os.environ.get("PARLSWARM_WORLD_SEED", "0")
    try:
        seed = int(raw)
    except ValueError:
        raise ValueError(f"PARLSWARM_WORLD_SEED must be a whole number, not {raw!r}") from None
    return world_tools(World.load(seed))
