"""The world's documents: one web-like page per place and section, plus region indexes.

Pages keep the Factbook's text as it is (HTML entities and tags, "(2025 est.)" suffixes,
notes): reading them is part of the task. A section page looks like::

    # France — Government
    The World Factbook › Europe › France (fr) › Government
    Sections of France: fr/introduction, fr/geography, ...

    ## Capital
    name: Paris
    geographic coordinates: 48 52 N, 2 20 E

Entries nested deeper are indented two spaces a level. Long documents are served in pages
of about :data:`PAGE_CHARS` characters, cut between lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from parlswarm.world.factbook import Entity, Factbook, Region, slug

PAGE_CHARS = 4000
SECTIONS = (
    "Introduction", "Geography", "People and Society", "Environment", "Government", "Economy",
    "Energy", "Communications", "Transportation", "Military and Security", "Space", "Terrorism",
    "Transnational Issues",
)  # fmt: skip
REGIONS_DOC = "regions"


def section_doc_id(code: str, section: str) -> str:
    return f"{code}/{slug(section)}"


REGION_PREFIX = "region/"  # a region's index page is the document REGION_PREFIX + its name


def region_doc_id(region: str) -> str:
    return f"{REGION_PREFIX}{region}"


def opened_region(tool: str, arguments: str) -> str | None:
    """The region whose index page a call of ``tool`` with these JSON ``arguments`` opens; None
    for any other call, or for arguments that are not a JSON object naming a ``doc_id``."""
    if tool != "open_page":
        return None
    try:
        doc_id = json.loads(arguments or "{}").get("doc_id")
    except (json.JSONDecodeError, AttributeError):
        return None
    return doc_id.removeprefix(REGION_PREFIX) if isinstance(doc_id, str) and doc_id.startswith(REGION_PREFIX) else None


@dataclass(frozen=True)
class Doc:
    """One document of the corpus."""

    doc_id: str
    title: str
    text: str
    region: str | None = None
    entity: str | None = None  # entity code of a section page

    def pages(self, size: int = PAGE_CHARS) -> list[str]:
        return paginate(self.text, size)


def paginate(text: str, size: int = PAGE_CHARS) -> list[str]:
    """Cut ``text`` between lines into pages of at most ``size`` characters.

    A single line longer than ``size`` makes a page of its own rather than being cut.
    """
    pages: list[str] = []
    current: list[str] = []
    length = 0
    for line in text.split("\n"):
        if current and length + len(line) + 1 > size:
            pages.append("\n".join(current))
            current, length = [], 0
        current.append(line)
        length += len(line) + 1
    if current:
        pages.append("\n".join(current))
    return pages or [""]


def _render_node(key: str, node: Any, indent: int) -> Iterator[str]:
    pad = "  " * indent
    if isinstance(node, str):  # notes stored as plain strings
        yield f"{pad}{node}" if key == "note" else f"{pad}{key.strip()}: {node}"
        return
    if not isinstance(node, Mapping):
        return
    text = node.get("text")
    children = [(k, v) for k, v in node.items() if k != "text"]
    if isinstance(text, str):
        yield f"{pad}{key.strip()}: {text}"
    elif children:
        yield f"{pad}{key.strip()}:"
    for k, v in children:
        yield from _render_node(k, v, indent + 1)


def render_section(entity: Entity, section: str, region_name: str) -> str:
    """The page of one section of one place."""
    lines = [
        f"# {entity.name} — {section}",
        f"The World Factbook › {region_name} › {entity.name} ({entity.code}) › {section}",
        f"Sections of {entity.name}: " + ", ".join(section_doc_id(entity.code, s) for s in entity.sections),
    ]
    for heading, node in entity.data[section].items():
        lines.append("")
        lines.append(f"## {heading.strip()}")
        if isinstance(node, str):
            lines.append(node)
            continue
        text = node.get("text") if isinstance(node, Mapping) else None
        if isinstance(text, str):
            lines.append(text)
        for k, v in node.items():
            if k != "text":
                lines.extend(_render_node(k, v, 0))
    return "\n".join(lines)


def render_region(region: Region, factbook: Factbook) -> str:
    """A region's index page: its members and how their pages are named."""
    lines = [
        f"# {region.name} — countries and territories",
        f"The World Factbook › {region.name} › region index",
        f"{len(region.members)} entries. Each has one page per section, doc id CODE/SECTION, where SECTION is "
        f"one of: {', '.join(slug(s) for s in SECTIONS)} (not every entry has every section).",
        "",
    ]
    lines += [f"- {factbook.entities[c].name} ({c})" for c in region.members]
    return "\n".join(lines)


def render_regions(factbook: Factbook) -> str:
    lines = ["# Regions of the world — index", "The World Factbook › regions", ""]
    lines += [f"- {r.name}: {region_doc_id(r.id)} ({len(r.members)} entries)" for r in factbook.regions.values()]
    return "\n".join(lines)


def build_docs(factbook: Factbook) -> dict[str, Doc]:
    """Every document of a world, by doc id, in a stable order."""
    docs: dict[str, Doc] = {}
    docs[REGIONS_DOC] = Doc(REGIONS_DOC, "Regions of the world — index", render_regions(factbook))
    for region in factbook.regions.values():
        doc_id = region_doc_id(region.id)
        docs[doc_id] = Doc(doc_id, f"{region.name} — countries and territories", render_region(region, factbook), region=region.id)
    for entity in sorted(factbook, key=lambda e: e.code):
        region_name = factbook.regions[entity.region].name
        for section in entity.sections:
            doc_id = section_doc_id(entity.code, section)
            docs[doc_id] = Doc(
                doc_id,
                f"{entity.name} — {section}",
                render_section(entity, section, region_name),
                region=entity.region,
                entity=entity.code,
            )
    return docs


# --- reading pages back (the scripted expert reads what the tools return) ---------------

_FRAME = re.compile(r"^\[doc (?P<doc>\S+) · page (?P<page>\d+) of (?P<pages>\d+)\]\n(?P<body>.*?)\n\[end of page \d+ of \d+[^\n]*\]$", re.S)


def frame_page(doc: Doc, page: int, size: int = PAGE_CHARS) -> str:
    """What ``open_page`` returns: one page with a header and how to read on."""
    pages = doc.pages(size)
    more = f"; next: open_page(doc_id=\"{doc.doc_id}\", page={page + 1})" if page < len(pages) else "; last page"
    return f"[doc {doc.doc_id} · page {page} of {len(pages)}]\n{pages[page - 1]}\n[end of page {page} of {len(pages)}{more}]"


@dataclass(frozen=True)
class PageView:
    doc_id: str
    page: int
    pages: int
    body: str


def parse_page(text: str) -> PageView | None:
    """The parts of an ``open_page`` result, or None when it is something else (an error)."""
    m = _FRAME.match(text)
    if m is None:
        return None
    return PageView(m.group("doc"), int(m.group("page")), int(m.group("pages")), m.group("body"))


# --- find: the entries of a document that mention some text -------------------------------

FIND_ENTRIES = 3  # at most this many entries per find
FIND_ENTRY_CHARS = 1500  # an entry longer than this is cut at a line
_FIND = re.compile(r'^\[find "(?P<text>[^"\n]*)" in (?P<doc>\S+) \((?P<title>[^\n]*)\) · (?P<count>\d+|no) entr(?:y|ies)[^\n]*\]\n?(?P<body>.*)$', re.S)


def entries(text: str) -> list[str]:
    """The ``## Heading`` blocks of a text, each with its lines.

    A block ends at the next heading of either level: a place's document is its sections one
    after another, and a section's last entry must not run on into the next section's title
    lines.
    """
    blocks: list[list[str]] = []
    inside = False
    for line in text.split("\n"):
        if line.startswith("## "):
            blocks.append([line])
            inside = True
        elif line.startswith("# "):
            inside = False
        elif inside:
            blocks[-1].append(line)
    return ["\n".join(b).rstrip("\n") for b in blocks]


def find_entries(doc: Doc, text: str) -> str:
    """What ``find`` returns: the entries of ``doc`` that mention ``text`` (case-insensitive).

    Entries whose heading mentions it come first, then those whose lines do; at most
    :data:`FIND_ENTRIES`, each cut to about :data:`FIND_ENTRY_CHARS` characters. The
    whole document is searched, not one page.
    """
    shown_text = " ".join(text.split())
    needle = shown_text.lower()
    blocks = entries(doc.text)
    by_heading = [b for b in blocks if needle in b.split("\n", 1)[0].lower()]
    by_heading.sort(key=lambda b: b.split("\n", 1)[0][3:].lower() != needle)  # the exact heading first
    by_line = [b for b in blocks if b not in by_heading and needle in b.lower()]
    found = (by_heading + by_line)[:FIND_ENTRIES]
    total = len(by_heading) + len(by_line)
    shown = [paginate(b, FIND_ENTRY_CHARS)[0] + ("\n…" if len(b) > FIND_ENTRY_CHARS else "") for b in found]
    count = "no entries" if not total else f"{total} entr{'y' if total == 1 else 'ies'}"
    if total > len(found):
        count += f", first {len(found)} shown"
    head = f'[find "{shown_text}" in {doc.doc_id} ({doc.title}) · {count}]'
    return "\n".join([head, *shown])


@dataclass(frozen=True)
class FindView:
    text: str
    doc_id: str
    title: str
    body: str  # the entries found, one after another (empty when none)


def parse_find(result: str) -> FindView | None:
    """The parts of a ``find`` result, or None when it is something else (an error)."""
    m = _FIND.match(result)
    if m is None:
        return None
    return FindView(m.group("text"), m.group("doc"), m.group("title"), m.group("body"))


def _indent(line: str) -> int:
    return (len(line) - len(line.lstrip(" "))) // 2


def read_entry(text: str, path: Sequence[str]) -> str | None:
    """The raw text of entry ``path`` (section first, ``*`` = first child) on a section page.

    ``text`` may be several consecutive pages joined by newlines. None when the entry is not
    on them.
    """
    heading = path[1]
    lines = text.split("\n")
    try:
        start = lines.index(f"## {heading}") + 1
    except ValueError:
        return None
    block: list[str] = []
    for line in lines[start:]:
        if line.startswith("## "):
            break
        block.append(line)
    if len(path) == 2:  # the heading's own text is its first line
        return block[0] if block and block[0] else None
    level = 0
    i = 0
    for n, key in enumerate(path[2:]):
        last = n == len(path) - 3
        found = False
        while i < len(block):
            line = block[i]
            i += 1
            if not line.strip():
                continue
            depth = _indent(line)
            if depth < level:
                return None
            if depth > level:
                continue
            body = line.strip()
            if key == "*":
                _, sep, value = body.partition(": ")
                if not sep and body.endswith(":"):
                    value = ""
            elif body.startswith(f"{key}: "):
                value = body[len(key) + 2 :]
            elif body == f"{key}:":
                value = ""
            else:
                continue
            found = True
            if last:
                return value or None
            break
        if not found:
            return None
        level += 1
    return None


def region_members(text: str) -> list[tuple[str, str]]:
    """(name, code) of the entries listed on a region index page."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^- (.+) \(([a-z]{2})\)$", text, re.M)]
