"""The world's tools: ``search`` and ``open_page``, built with the project's ``@tool``.

Every call is one tool call of one step; ``open_page`` serves long documents a page at a
time, so reading a long section costs more steps than reading a short one.
"""

from __future__ import annotations

import os

from parlswarm.tools import ToolError, Toolset, tool
from parlswarm.world.world import World

MAX_K = 20


def world_tools(world: World) -> Toolset:
    """``search`` and ``open_page`` over ``world``'s documents."""

    @tool
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

    @tool
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

    return Toolset([search, open_page])


def default_toolset() -> Toolset:
    """The ``world`` tool set of ``--tools world``: seed from ``$PARLSWARM_WORLD_SEED`` (0)."""
    raw = os.environ.get("PARLSWARM_WORLD_SEED", "0")
    try:
        seed = int(raw)
    except ValueError:
        raise ValueError(f"PARLSWARM_WORLD_SEED must be a whole number, not {raw!r}") from None
    return world_tools(World.load(seed))
