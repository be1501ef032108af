"""One world: a (possibly counterfactual) Factbook, its pages and their search index.

The index is built once per world seed and corpus version and cached on disk under
``$PARLSWARM_CACHE`` (default ``~/.cache/parlswarm``); pages are rendered on load, which
takes well under a second.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import BaseModel

from parlswarm.world.counterfactual import counterfactual
from parlswarm.world.factbook import FACTBOOK_VERSION, Factbook, clean_text
from parlswarm.world.fields import Field, Value
from parlswarm.world.index import SearchIndex
from parlswarm.world.pages import PAGE_CHARS, Doc, build_docs, find_entries, frame_page

# Bump when pages, fields or counterfactual rules change: cached indexes are then rebuilt.
CORPUS_VERSION = "1"
SNIPPET_CHARS = 200
_WORD = re.compile(r"\w\w+")
_STOP = frozenset("the and for with from that this what which of in on to by is are be as at or an".split())


def default_cache_dir() -> Path:
    """``$PARLSWARM_CACHE`` or ``~/.cache/parlswarm``."""
    env = os.environ.get("PARLSWARM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "parlswarm"


class SearchHit(BaseModel):
    doc_id: str
    title: str
    snippet: str


_FRAME_LINES = ("# ", "The World Factbook ›", "Sections of ")


def _snippet(doc: Doc, words: set[str]) -> str:
    """The line of the page body sharing most words with the query (the first one on a tie)."""
    best, best_score = "", -1
    for line in doc.text.split("\n"):
        if not line.strip() or line.startswith(_FRAME_LINES):
            continue
        text = clean_text(line)
        score = len(words & set(_WORD.findall(text.lower())))
        if line.startswith("## ") and score == 0:
            continue  # a bare heading says little
        if score > best_score:
            best, best_score = text, score
    return best if len(best) <= SNIPPET_CHARS else best[: SNIPPET_CHARS - 1] + "…"


class World:
    """The documents of one world seed and what an agent can do with them: search, open, find."""

    def __init__(self, seed: int, factbook: Factbook, docs: dict[str, Doc], index: SearchIndex, page_chars: int = PAGE_CHARS) -> None:
        self.seed = seed
        self.factbook = factbook
        self.docs = docs
        self.index = index
        self.page_chars = page_chars
        self._places: dict[str, Doc] | None = None  # built on the first place-wide find

    @staticmethod
    def cache_key(seed: int) -> str:
        return f"v{CORPUS_VERSION}-factbook{FACTBOOK_VERSION}-seed{seed}"

    @classmethod
    def load(cls, seed: int = 0, cache_dir: str | Path | None = None, base: Factbook | None = None) -> World:
        """The world of ``seed`` (0 = the real Factbook), its index from the cache or built now."""
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"world seed must be a whole number ≥ 0, not {seed!r}")
        factbook = counterfactual(base or Factbook.load(), seed)
        docs = build_docs(factbook)
        directory = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        index, _ = SearchIndex.cached(docs, directory / "world" / cls.cache_key(seed))
        return cls(seed, factbook, docs, index)

    def search(self, query: str, k: int = 5) -> list[SearchHit]:
        words = {w for w in _WORD.findall(query.lower()) if w not in _STOP}
        hits = self.index.search(query, k)
        return [SearchHit(doc_id=d, title=self.docs[d].title, snippet=_snippet(self.docs[d], words)) for d, _ in hits]

    def page_count(self, doc_id: str) -> int:
        return len(self.docs[doc_id].pages(self.page_chars))

    def _doc(self, doc_id: str) -> Doc:
        doc = self.docs.get(doc_id.strip())
        if doc is None:
            raise KeyError(f"no document with doc_id '{doc_id}'; doc ids come from search results or index pages")
        return doc

    def open_page(self, doc_id: str, page: int = 1) -> str:
        """Page ``page`` of a document with its frame; KeyError / IndexError name the problem."""
        doc = self._doc(doc_id)
        pages = self.page_count(doc.doc_id)
        if not 1 <= page <= pages:
            raise IndexError(f"page {page} is out of range: '{doc.doc_id}' has {pages} page{'s' if pages > 1 else ''}")
        return frame_page(doc, page, self.page_chars)

    def place_doc(self, code: str) -> Doc | None:
        """All section pages of the place ``code`` as one document (doc id ``code``), or None."""
        if self._places is None:
            sections: dict[str, list[Doc]] = {}
            for doc in self.docs.values():
                if doc.entity is not None:
                    sections.setdefault(doc.entity, []).append(doc)
            self._places = {
                c: Doc(c, ds[0].title.split(" — ")[0], "\n".join(d.text for d in ds), ds[0].region, c)
                for c, ds in sections.items()
            }
        return self._places.get(code.strip())

    def find(self, doc_id: str, text: str) -> str:
        """The entries of a document — or, for a place code, of all the place's sections — that
        mention ``text`` (see :func:`~parlswarm.world.pages.find_entries`)."""
        doc = self.place_doc(doc_id) if "/" not in doc_id else None
        doc = doc or self._doc(doc_id)
        if not text.strip() or '"' in text:
            raise ValueError("text must be a few words without double quotes, e.g. \"Population\"")
        return find_entries(doc, text)

    def value(self, code: str, field: Field) -> Value | None:
        """The value of ``field`` for a place, as a careful reader of its page takes it."""
        return field.parse(self.factbook.entities[code].value(field.path))
