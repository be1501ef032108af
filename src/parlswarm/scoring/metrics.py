"""WideSearch's per-column preprocessing and cell metrics, deterministic ones only.

Each preprocessor maps a cell's text to text; each metric compares a response cell with a
gold cell (both already preprocessed) and returns 1.0 or 0.0. ``llm_judge`` is named here
so task files validate, but it is scored by a judge model (:mod:`parlswarm.scoring.judge`).

Where this differs from ByteDance-Seed/WideSearch ``metric_utils.py`` it says so and why;
docs/scoring.md lists every difference.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

# The cell texts pandas reads as missing by default (WideSearch reads both tables with
# pandas, so "N/A" in the gold and an empty response cell agree there; they agree here).
MISSING_TOKENS = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
     "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)


def canonical_cell(text: str) -> str:
    """A cell's text, stripped, with every missing-value token read as the empty string."""
    text = str(text).strip()
    return "" if text in MISSING_TOKENS else text


# -- preprocessing -----------------------------------------------------------------------

# a number as the scorer reads one in a cell (a trailing % kept)
NUMBER = re.compile(r"[-+]?\d*\.\d+%?|[-+]?\d+\.?\d*%?")


def extract_number(text: str, language: str = "en") -> str:
    """The first number in the text (thousands commas dropped, a trailing % kept), else NULL."""
    found = NUMBER.findall(str(text).replace(",", ""))
    return found[0] if found else "NULL"


def norm_str(text: str, language: str = "en") -> str:
    """Lower-case, strip, and remove spaces and asterisks (markdown bold)."""
    return str(text).lower().strip().replace(" ", "").replace("*", "")


# dateparser's defaults read a year alone as "this month of that year" and relative words
# against today, so the same cell could score differently next month. Fixing the month
# to January and the relative base makes the score a function of the text alone.
_DATE_SETTINGS: dict[str, Any] = {
    "PREFER_DAY_OF_MONTH": "first",
    "PREFER_MONTH_OF_YEAR": "first",
    "RELATIVE_BASE": datetime(2000, 1, 1),
}


def _languages(language: str) -> tuple[str, ...] | None:
    # Telling dateparser the language makes it fast (auto-detection tries every language
    # and takes up to seconds on a non-date) and stops words like "nan" reading as dates.
    if language.startswith("zh"):
        return ("zh", "en")
    if language.startswith("en"):
        return ("en",)
    return None


@lru_cache(maxsize=65536)
def parse_date(text: str, language: str = "en") -> datetime | None:
    """A date read from free text with dateparser, or None. Time zones are dropped."""
    if not text.strip():
        return None
    import dateparser  # imported here: it takes a moment and only date columns need it

    langs = _languages(language)
    try:
        parsed = dateparser.parse(text, settings=dict(_DATE_SETTINGS), languages=list(langs) if langs else None)
    except Exception:  # noqa: BLE001 - dateparser raises assorted errors on odd input; odd input is no date
        return None
    # "(2011 est.)" reads as a US time zone; an aware and a naive date cannot be subtracted.
    return parsed.replace(tzinfo=None) if parsed is not None else None


def norm_date(text: str, language: str = "en") -> str:
    """The date as YYYY-MM-DD when the text reads as one, else the text unchanged."""
    parsed = parse_date(str(text), language)
    return parsed.strftime("%Y-%m-%d") if parsed is not None else str(text)


Preprocessor = Callable[[str, str], str]
PREPROCESSORS: dict[str, Preprocessor] = {
    "extract_number": extract_number,
    "norm_str": norm_str,
    "norm_date": norm_date,
}


# -- metrics -----------------------------------------------------------------------------


def exact_match(response: str, target: str, criterion: Any = None, language: str = "en") -> float:
    """Equal, ignoring case."""
    return float(response.lower() == target.lower())


def in_match(response: str, target: str, criterion: Any = None, language: str = "en") -> float:
    """The response text occurs in the gold text (case-sensitive, as in WideSearch).

    An empty response matches only an empty gold cell: WideSearch compares pandas' "nan"
    there, which is not in most texts; the empty string is in every text.
    """
    if not response:
        return float(not target)
    return float(response in target)


# http(s) URLs; the host part is what counts. WideSearch's pattern also takes in closing
# brackets, so a markdown link [site](https://a.org) gives the host "a.org)" there and
# misses the gold "a.org"; here a URL ends before a closing bracket, quote or space.
_URL = re.compile(r"https?://[^\s|<>\"'`\]\)\}]+", re.IGNORECASE)


def url_hosts(text: str) -> set[str]:
    return {urlparse(u).netloc.lower() for u in _URL.findall(text)}


def url_match(response: str, target: str, criterion: Any = None, language: str = "en") -> float:
    """The same set of host names (netlocs, case-insensitive). No URL on either side agrees."""
    return float(url_hosts(response) == url_hosts(target))


def _as_number(text: str) -> float | None:
    try:
        if "%" in text:
            return float(text.replace("%", "")) / 100.0
        return float(text)
    except (TypeError, ValueError):
        return None


def number_near(response: str, target: str, criterion: Any = None, language: str = "en") -> float:
    """|response - gold| <= criterion * |gold|; "12%" reads as 0.12.

    Two cells that are not numbers agree only when their texts are equal (both "NULL"
    after ``extract_number``, say).
    """
    r, t = _as_number(response), _as_number(target)
    if r is None or t is None:
        return float(r is None and t is None and response == target)
    if math.isnan(r) or math.isnan(t):  # NaN is near nothing
        return 0.0
    return float(abs(r - t) <= abs(t) * float(criterion))


def date_near(response: str, target: str, criterion: Any = None, language: str = "en") -> float:
    """Within 31 days of each other. Two cells that are not dates agree (as in WideSearch)."""
    r, t = parse_date(response, language), parse_date(target, language)
    if r is None or t is None:
        return float(r is None and t is None)
    return float(abs((r - t).days) <= 31)


Metric = Callable[[str, str, Any, str], float]
METRICS: dict[str, Metric | None] = {
    "exact_match": exact_match,
    "in_match": in_match,
    "url_match": url_match,
    "number_near": number_near,
    "date_near": date_near,
    "llm_judge": None,  # needs a judge model
}

JUDGE_METRIC = "llm_judge"

__all__ = [
    "JUDGE_METRIC",
    "METRICS",
    "MISSING_TOKENS",
    "PREPROCESSORS",
    "canonical_cell",
    "date_near",
    "exact_match",
    "extract_number",
    "in_match",
    "norm_date",
    "norm_str",
    "number_near",
    "parse_date",
    "url_hosts",
    "url_match",
]
