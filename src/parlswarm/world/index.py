"""BM25 search over the world's documents (``bm25s``), saved to and loaded from disk."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import bm25s
import numpy as np

from parlswarm.world.factbook import clean_text
from parlswarm.world.pages import Doc

log = logging.getLogger(__name__)
# bm25s sets its own logger to DEBUG on import, which would print through any root handler.
logging.getLogger("bm25s").setLevel(logging.WARNING)

STOPWORDS = "en"
_META = "parlswarm-index.json"
INDEX_FORMAT = 2  # body and title indexes in sub-folders


def corpus_digest(docs: Mapping[str, Doc]) -> str:
    """A fingerprint of the documents an index was built from."""
    h = hashlib.sha256()
    for doc in docs.values():
        h.update(doc.doc_id.encode())
        h.update(b"\0")
        h.update(doc.text.encode())
        h.update(b"\0")
    return h.hexdigest()


# Two BM25 fields: the page text and its title. A title match ("France — Government" for
# "France government") weighs this much more than the same words in a long page body.
TITLE_WEIGHT = 3.0


def _bm25(texts: list[str]) -> bm25s.BM25:
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords=STOPWORDS, show_progress=False), show_progress=False)
    return retriever


def _scores(retriever: bm25s.BM25, tokens: list[str]) -> np.ndarray:
    known = [t for t in tokens if t in retriever.vocab_dict]
    if not known:
        return np.zeros(retriever.scores["num_docs"], dtype=np.float32)
    return np.asarray(retriever.get_scores(known), dtype=np.float32)


class SearchIndex:
    """Top-k BM25 retrieval of doc ids over page text and title."""

    def __init__(self, body: bm25s.BM25, title: bm25s.BM25, doc_ids: Sequence[str]) -> None:
        self.body = body
        self.title = title
        self.doc_ids = list(doc_ids)

    @classmethod
    def build(cls, docs: Mapping[str, Doc]) -> SearchIndex:
        body = _bm25([clean_text(d.text) for d in docs.values()])
        title = _bm25([d.title for d in docs.values()])
        return cls(body, title, list(docs))

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """The ``k`` best (doc_id, score) pairs for ``query``; empty when no word matches."""
        tokens = bm25s.tokenize([query], stopwords=STOPWORDS, show_progress=False, return_ids=False)[0]
        scores = _scores(self.body, tokens) + TITLE_WEIGHT * _scores(self.title, tokens)
        k = min(k, len(self.doc_ids))
        top = np.argsort(-scores, kind="stable")[:k]
        return [(self.doc_ids[int(i)], float(scores[i])) for i in top if scores[i] > 0]

    def save(self, directory: Path, digest: str) -> None:
        self.body.save(str(directory / "body"), show_progress=False)
        self.title.save(str(directory / "title"), show_progress=False)
        meta = {"format": INDEX_FORMAT, "digest": digest, "doc_ids": self.doc_ids}
        (directory / _META).write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, digest: str) -> SearchIndex | None:
        """The index saved in ``directory`` if it was built from documents with ``digest``."""
        meta_file = directory / _META
        if not meta_file.is_file():
            return None
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            if meta.get("format") != INDEX_FORMAT or meta.get("digest") != digest:
                return None
            body = bm25s.BM25.load(str(directory / "body"), show_progress=False)
            title = bm25s.BM25.load(str(directory / "title"), show_progress=False)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring unreadable search index in %s: %s", directory, exc)
            return None
        return cls(body, title, meta["doc_ids"])

    @classmethod
    def cached(cls, docs: Mapping[str, Doc], directory: Path) -> tuple[SearchIndex, bool]:
        """Load the index from ``directory``, or build and save it there; (index, was_built)."""
        digest = corpus_digest(docs)
        index = cls.load(directory, digest)
        if index is not None:
            return index, False
        log.info("building the search index in %s", directory)
        index = cls.build(docs)
        directory.parent.mkdir(parents=True, exist_ok=True)
        # Build beside the target and rename: concurrent builders never see a half-written index.
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
        try:
            index.save(tmp, digest)
            if directory.exists():
                shutil.rmtree(directory, ignore_errors=True)
            try:
                os.replace(tmp, directory)
            except OSError:  # another process won the race; its index is as good as ours
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return index, True


__all__ = ["SearchIndex", "corpus_digest"]
