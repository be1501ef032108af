"""The field registry: the answerable columns of the world's tasks.

A field names where its value lives in the Factbook JSON (``path``; ``*`` is the first
child, e.g. the latest year), its type, and how the raw text becomes a value: the same
reading a careful person applies to the page (decode entities, drop notes and
"(2025 est.)" suffixes, take the first number ...). Gold tables and the scripted expert
both go through :meth:`Field.parse`; they differ in where the raw text comes from (the data
versus the rendered page).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from parlswarm.world.factbook import clean_text

FieldType = Literal["string", "number", "date"]
Value = str | float

MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip
_MISSING = {"", "none", "na", "n/a", "nan", "-", "unknown"}

# First number of a text: optional minus (also before "$"), digits with thousands commas.
NUMBER = re.compile(r"(?<![\w.])(-?)\$?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?")
DATE_DMY = re.compile(r"^(\d{1,2}) (" + "|".join(MONTHS) + r") (\d{3,4})\b")
_TRAILING_ELEVATION = re.compile(r"\s+-?[\d,]+(?:\.\d+)?\s*(?:m\b.*)?$")
_PARENS = re.compile(r"\s*\([^)]*\)")
_TLD = re.compile(r"(?<![\w.])\.[a-z]{2,}\b")
_ISO_CURRENCY = re.compile(r"\(([A-Z]{3})\)")
_SCALE = re.compile(r"\s*(million|billion|trillion)\b")
_SCALES = {"million": 1e6, "billion": 1e9, "trillion": 1e12}


def _first_clause(text: str) -> str:
    text = text.split(";")[0]
    text = re.split(r"\bnote\b\s*[-:]", text)[0]
    return text.strip(" ,.-")


def parse_name(text: str) -> str | None:
    """A proper name: first clause, parentheticals dropped ("Pretoria (administrative capital)")."""
    name = _PARENS.sub("", _first_clause(text)).strip(" ,.-")
    return None if name.lower() in _MISSING else name


def parse_phrase(text: str) -> str | None:
    """A short phrase: first clause as written ("parliamentary republic")."""
    phrase = _first_clause(text)
    return None if phrase.lower() in _MISSING else phrase


def parse_place(text: str) -> str | None:
    """A place with its elevation ("Mont Blanc 4,810 m") → the place."""
    clause = _first_clause(text)
    name = _TRAILING_ELEVATION.sub("", clause).strip(" ,.-")
    name = _PARENS.sub("", name).strip(" ,.-")
    if not name or name.lower() in _MISSING or name[0].isdigit() or name.startswith("-"):
        return None
    return name


def parse_tld(text: str) -> str | None:
    m = _TLD.search(text.lower())
    return m.group(0) if m else None


def parse_currency_code(text: str) -> str | None:
    m = _ISO_CURRENCY.search(text)
    return m.group(1) if m else None


def parse_number(text: str) -> float | None:
    if text.strip().lower() in _MISSING or text.strip().upper().startswith("NA"):
        return None
    m = NUMBER.search(text)
    if m is None:
        return None
    sign, digits, frac = m.groups()
    value = float(f"{sign}{digits.replace(',', '')}{frac or ''}")
    scale = _SCALE.match(text, m.end())
    return value * _SCALES[scale.group(1)] if scale else value


def parse_date(text: str) -> str | None:
    """A leading day-month-year ("4 July 1776 (declared ...)") → ``1776-07-04``."""
    m = DATE_DMY.match(text)
    if m is None:
        return None
    day, month, year = int(m.group(1)), MONTHS.index(m.group(2)) + 1, int(m.group(3))
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        return None


PARSERS: dict[str, Callable[[str], Value | None]] = {
    "name": parse_name,
    "phrase": parse_phrase,
    "place": parse_place,
    "tld": parse_tld,
    "currency_code": parse_currency_code,
    "number": parse_number,
    "date": parse_date,
}


def format_number(value: float) -> str:
    """Plain digits: no thousands separators, no trailing zeros, no exponent."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


class Field(BaseModel):
    """One answerable column."""

    model_config = ConfigDict(frozen=True)

    id: str
    label: str  # the column header
    noun: str  # how a sentence names it: "median age"
    path: tuple[str, ...]  # source path in the Factbook JSON; "*" = first child
    type: FieldType
    parser: str  # a key of PARSERS
    unit: str | None = None  # of numbers, e.g. "years"; shown in task text
    description: str = ""
    criterion: float = 0.01  # relative tolerance of number_near

    @property
    def section(self) -> str:
        return self.path[0]

    def parse(self, raw: str | None) -> Value | None:
        """The value a reader takes from the raw text, or None when the text holds none."""
        if raw is None:
            return None
        return PARSERS[self.parser](clean_text(raw))

    def cell(self, value: Value) -> str:
        """The value as written in a gold table cell."""
        return format_number(float(value)) if self.type == "number" else str(value)

    def eval_pipeline(self) -> dict[str, Any]:
        """WideSearch's per-column scoring entry."""
        if self.type == "number":
            return {"preprocess": ["extract_number"], "metric": ["number_near"], "criterion": self.criterion}
        if self.type == "date":
            return {"preprocess": ["norm_date"], "metric": ["date_near"]}
        return {"preprocess": ["norm_str"], "metric": ["exact_match"]}

    def describe(self) -> dict[str, Any]:
        """The registry entry as shown by ``parlswarm world fields --json``."""
        return {
            "id": self.id,
            "label": self.label,
            "source_path": list(self.path),
            "type": self.type,
            "normalisation": self.parser,
            "unit": self.unit,
            "description": self.description,
            "eval_pipeline": self.eval_pipeline(),
        }


def _f(id: str, label: str, noun: str, path: str, type: FieldType, parser: str, unit: str | None = None, desc: str = "") -> Field:
    return Field(id=id, label=label, noun=noun, path=tuple(path.split("/")), type=type, parser=parser, unit=unit, description=desc)


FIELDS: tuple[Field, ...] = (
    _f("capital", "Capital", "capital", "Government/Capital/name", "string", "name", desc="capital city, notes and glosses dropped"),
    _f("long_name", "Official name", "official name", "Government/Country name/conventional long form", "string", "name", desc="conventional long-form name"),
    _f("government_type", "Government type", "government type", "Government/Government type", "string", "phrase"),
    _f("independence", "Independence date", "independence date", "Government/Independence", "date", "date", desc="first date given, when the entry starts with a full date"),
    _f("nationality", "Nationality adjective", "nationality adjective", "People and Society/Nationality/adjective", "string", "name"),
    _f("population", "Population", "population", "People and Society/Population/total", "number", "number", "people"),
    _f("median_age", "Median age (years)", "median age", "People and Society/Median age/total", "number", "number", "years"),
    _f("life_expectancy", "Life expectancy (years)", "life expectancy at birth", "People and Society/Life expectancy at birth/total population", "number", "number", "years"),
    _f("population_growth", "Population growth rate (%)", "population growth rate", "People and Society/Population growth rate", "number", "number", "%"),
    _f("birth_rate", "Birth rate (per 1,000)", "birth rate", "People and Society/Birth rate", "number", "number", "births per 1,000 people"),
    _f("death_rate", "Death rate (per 1,000)", "death rate", "People and Society/Death rate", "number", "number", "deaths per 1,000 people"),
    _f("fertility_rate", "Total fertility rate", "total fertility rate", "People and Society/Total fertility rate", "number", "number", "children born per woman"),
    _f("infant_mortality", "Infant mortality (per 1,000 live births)", "infant mortality rate", "People and Society/Infant mortality rate/total", "number", "number", "deaths per 1,000 live births"),
    _f("urban_population", "Urban population (%)", "urban population share", "People and Society/Urbanization/urban population", "number", "number", "% of total population"),
    _f("area", "Area (sq km)", "total area", "Geography/Area/total", "number", "number", "sq km"),
    _f("coastline", "Coastline (km)", "coastline", "Geography/Coastline", "number", "number", "km"),
    _f("land_boundaries", "Land boundaries (km)", "total length of land boundaries", "Geography/Land boundaries/total", "number", "number", "km"),
    _f("highest_point", "Highest point", "highest point", "Geography/Elevation/highest point", "string", "place", desc="name only, elevation dropped"),
    _f("lowest_point", "Lowest point", "lowest point", "Geography/Elevation/lowest point", "string", "place", desc="name only, elevation dropped"),
    _f("mean_elevation", "Mean elevation (m)", "mean elevation", "Geography/Elevation/mean elevation", "number", "number", "m"),
    _f("internet_code", "Internet country code", "internet country code", "Communications/Internet country code", "string", "tld", desc="first top-level domain listed"),
    _f("internet_users", "Internet users (%)", "share of internet users", "Communications/Internet users/percent of population", "number", "number", "% of population"),
    _f("currency_code", "Currency code", "currency code", "Economy/Exchange rates/Currency", "string", "currency_code", desc="ISO 4217 code in the exchange-rate entry"),
    _f("gdp_per_capita", "Real GDP per capita (USD)", "real GDP per capita", "Economy/Real GDP per capita/*", "number", "number", "US dollars", "latest year given"),
    _f("unemployment", "Unemployment rate (%)", "unemployment rate", "Economy/Unemployment rate/*", "number", "number", "%", "latest year given"),
    _f("electrification", "Electrification (%)", "electrification rate", "Energy/Electricity access/electrification - total population", "number", "number", "% of population"),
    _f("airports", "Airports", "number of airports", "Transportation/Airports", "number", "number", "airports"),
    _f("aircraft_prefix", "Aircraft registration prefix", "civil aircraft registration prefix", "Transportation/Civil aircraft registration country code prefix", "string", "phrase"),
)

FIELDS_BY_ID: dict[str, Field] = {f.id: f for f in FIELDS}


def get_field(field_id: str) -> Field:
    """The field with this id; ValueError naming the known ids otherwise."""
    try:
        return FIELDS_BY_ID[field_id]
    except KeyError:
        raise ValueError(f"unknown field '{field_id}'; known fields: {', '.join(FIELDS_BY_ID)}") from None


def field_by_label(label: str) -> Field | None:
    key = label.strip().lower().replace(" ", "")
    return next((f for f in FIELDS if f.label.lower().replace(" ", "") == key), None)


def field_by_noun(noun: str) -> Field | None:
    key = noun.strip().lower()
    return next((f for f in FIELDS if f.noun.lower() == key), None)


