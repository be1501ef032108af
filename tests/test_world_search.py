"""The world's search index and its tools: search, open_page, the on-disk cache, --tools world."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from world_support import cache_dir, world

from parlswarm import Swarm
from parlswarm.models import ScriptedModel, tool_reply
from parlswarm.toolsets import load_toolsets
from parlswarm.types import Message, content_text
from parlswarm.world.factbook import REGION_NAMES
from parlswarm.world.fields import get_field
from parlswarm.world.index import SearchIndex
from parlswarm.world.pages import FIND_ENTRIES, parse_find, parse_page, read_entry
from parlswarm.world.tools import world_tools
from parlswarm.world.world import World


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> World:
    return world(0, tmp_path_factory)


def test_index_is_cached_on_disk_and_rebuilt_when_pages_change(real: World, tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = cache_dir(tmp_path_factory) / "world" / World.cache_key(0)
    assert (directory / "parlswarm-index.json").is_file()
    index, built = SearchIndex.cached(real.docs, directory)
    assert not built and index.doc_ids == list(real.docs)
    changed = dict(real.docs)
    changed.pop("regions")
    _, built = SearchIndex.cached(changed, tmp_path_factory.mktemp("other") / "idx")
    assert built


def test_search_finds_region_indexes_and_place_pages(real: World) -> None:
    for region, name in REGION_NAMES.items():
        hits = real.search(f"{name} countries and territories", 5)
        assert hits[0].doc_id == f"region/{region}", name
        assert hits[0].title == f"{name} — countries and territories"
    assert real.search("France government", 5)[0].doc_id == "fr/government"
    assert "ja/people-and-society" in [h.doc_id for h in real.search("Japan people and society median age", 5)]
    assert len(real.search("capital", 3)) == 3
    assert real.search("zzzqqq xyzzy", 5) == []


def test_counterfactual_pages_are_what_the_index_serves(tmp_path_factory: pytest.TempPathFactory) -> None:
    cf = world(1, tmp_path_factory)
    capital = get_field("capital")
    value = cf.value("fr", capital)
    assert value != world(0, tmp_path_factory).value("fr", capital)
    hits = [h.doc_id for h in cf.search(f"France capital {value}", 5)]
    assert "fr/government" in hits
    text = "\n".join(parse_page(cf.open_page("fr/government", p)).body for p in range(1, cf.page_count("fr/government") + 1))  # type: ignore[union-attr]
    assert capital.parse(read_entry(text, capital.path)) == value


async def test_tools_search_and_read_on_through_pages(real: World) -> None:
    tools = world_tools(real)
    assert tools.names() == ["search", "open_page", "find"]
    search, open_page = tools.get("search"), tools.get("open_page")
    assert search is not None and open_page is not None
    out = await search.invoke({"query": "Europe countries and territories", "k": 2})
    hits = json.loads(content_text(out.content))
    assert out.ok and len(hits) == 2 and set(hits[0]) == {"doc_id", "title", "snippet"}
    # Read a multi-page document to its end by following the pointers.
    page, seen = 1, []
    while True:
        result = await open_page.invoke({"doc_id": "fr/government", "page": page})
        view = parse_page(content_text(result.content))
        assert result.ok and view is not None and view.page == page
        seen.append(view.body)
        if 'next: open_page(doc_id="fr/government", page=' not in content_text(result.content):
            break
        page += 1
    assert page == real.page_count("fr/government") >= 2
    assert "\n".join(seen) == real.docs["fr/government"].text
    bad = await open_page.invoke({"doc_id": "zz/nowhere"})
    assert not bad.ok and content_text(bad.content) == (
        "error: no document with doc_id 'zz/nowhere'; doc ids come from search results or index pages"
    )
    far = await open_page.invoke({"doc_id": "fr/government", "page": 99})
    assert content_text(far.content) == f"error: page 99 is out of range: 'fr/government' has {page} pages"
    assert content_text((await search.invoke({"query": "x", "k": 50})).content) == "error: k must be between 1 and 20, not 50"
    assert content_text((await search.invoke({"query": "  "})).content) == "error: query must not be empty"


async def test_find_returns_the_entries_that_mention_the_words_from_every_page(real: World) -> None:
    find = world_tools(real).get("find")
    assert find is not None
    # Capital sits on fr/government's first page, independence on the third: find
    # reads the whole document.
    assert real.page_count("fr/government") >= 2
    for words, field_id in (("Capital", "capital"), ("Independence", "independence")):
        out = await find.invoke({"doc_id": "fr/government", "text": words})
        view = parse_find(content_text(out.content))
        assert out.ok and view is not None and view.doc_id == "fr/government" and view.title == "France — Government"
        field = get_field(field_id)
        assert field.parse(read_entry(view.body, field.path)) == real.value("fr", field)
    # The exact heading first, at most FIND_ENTRIES entries, and the count says how many matched.
    many = content_text((await find.invoke({"doc_id": "fr/people-and-society", "text": "population"})).content)
    view = parse_find(many)
    assert view is not None and view.body.startswith("## Population\n")
    assert view.body.count("\n## ") == FIND_ENTRIES - 1 and f"first {FIND_ENTRIES} shown" in many.split("\n", 1)[0]
    # A title with parentheses still reads back; nothing found is a result, not an error.
    none = content_text((await find.invoke({"doc_id": "cf/geography", "text": "volcano zzz"})).content)
    assert none == '[find "volcano zzz" in cf/geography (Congo (Brazzaville) — Geography) · no entries]'
    assert parse_find(none) is not None and parse_find(none).body == ""  # type: ignore[union-attr]
    bad = await find.invoke({"doc_id": "zz/nowhere", "text": "Capital"})
    assert not bad.ok and "no document with doc_id 'zz/nowhere'" in content_text(bad.content)
    empty = await find.invoke({"doc_id": "fr/government", "text": "  "})
    assert not empty.ok and "text must be a few words" in content_text(empty.content)


async def test_find_with_a_place_code_searches_all_of_the_places_sections(real: World) -> None:
    find = world_tools(real).get("find")
    assert find is not None
    # Fields of three different sections, each found with the place code alone.
    for words, field_id in (("Capital", "capital"), ("Area", "area"), ("Population", "population")):
        out = await find.invoke({"doc_id": "fr", "text": words})
        view = parse_find(content_text(out.content))
        assert out.ok and view is not None and view.doc_id == "fr" and view.title == "France"
        field = get_field(field_id)
        assert field.section != "" and field.parse(read_entry(view.body, field.path)) == real.value("fr", field)
    # A section's last entry ends where the section does, not at the next section's title.
    for out in [await find.invoke({"doc_id": "fr", "text": words}) for words in ("Exchange rates", "Capital", "Coastline")]:
        body = parse_find(content_text(out.content)).body  # type: ignore[union-attr]
        assert not any(line.startswith(("# ", "The World Factbook ›", "Sections of ")) for line in body.splitlines()), body
    bad = await find.invoke({"doc_id": "zz", "text": "Capital"})
    assert not bad.ok and "no document with doc_id 'zz'" in content_text(bad.content)


async def test_world_tools_run_inside_the_runtime(real: World) -> None:
    def script(messages: Sequence[Message]):
        turn = sum(1 for m in messages if m.role == "assistant")
        if turn == 0:
            return tool_reply("search", {"query": "South Asia countries and territories", "k": 1})
        if turn == 1:
            return tool_reply("open_page", {"doc_id": "region/south-asia"})
        return content_text(messages[-1].content)

    result = await Swarm(ScriptedModel(script), tools=world_tools(real), mode="single").run("list South Asia")
    assert "- India (in)" in result.answer
    assert result.summary.tool_calls == 2 and result.summary.steps == 3
    tool_results = [m for m in result.trace.events if m.kind == "tool_finished"]
    assert all(e.ok for e in tool_results)  # type: ignore[attr-defined]


def test_world_is_a_named_tool_set(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    world(0, tmp_path_factory)  # the cache holds the index already
    monkeypatch.setenv("PARLSWARM_CACHE", str(cache_dir(tmp_path_factory)))
    assert load_toolsets("world").names() == ["search", "open_page", "find"]
    monkeypatch.setenv("PARLSWARM_WORLD_SEED", "many")
    with pytest.raises(ValueError, match="PARLSWARM_WORLD_SEED must be a whole number, not 'many'"):
        load_toolsets("world")


def test_world_seed_must_be_a_whole_number(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="world seed must be a whole number ≥ 0, not -1"):
        World.load(-1, tmp_path)
