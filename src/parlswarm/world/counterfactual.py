"""Counterfactual worlds: the same Factbook with the registry's values changed by a seed.

World seed 0 is the real data. Any other seed changes every registry field of every place
at the source, before pages, index and gold are made from it, so the three always agree:

- numbers are jittered by 5–25 % up or down, written back in the page's own format
  (thousands separators, decimals, "million", "(2025 est.)" stay as they were);
- names, codes and phrases are permuted across the places that have one;
- dates are moved by three months to ten years.

A model that answers from memory of the real Factbook gets these wrong; one that reads the
pages gets them right. Where the same text appears elsewhere on the same place's pages
under the same label (the urban population is given twice), it is changed there too.
Free prose (the introduction, notes) is left as it is: reading the labelled entry matters.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Iterable

from parlswarm.world.factbook import Entity, Factbook, clean_text, leaves, resolve_path, set_value
from parlswarm.world.fields import DATE_DMY, FIELDS, MONTHS, NUMBER, Field


def _rng(seed: int, field: Field) -> random.Random:
    return random.Random(f"parlswarm-world:{seed}:{field.id}")


def _jitter(value: float, rng: random.Random) -> float:
    factor = rng.uniform(0.75, 0.95) if rng.random() < 0.5 else rng.uniform(1.05, 1.25)
    return value * factor


def _format_token(match: re.Match[str], magnitude: float) -> str:
    """A number written like the token it replaces (sign, "$", separators, decimals)."""
    sign, digits, frac = match.groups()
    dollar = "$" if "$" in match.group(0) else ""
    decimals = len(frac) - 1 if frac else 0
    # Separators as the page writes them; a number that grows past 999 gets them too.
    grouped = "," in digits or (len(digits) <= 3 and magnitude >= 1000)
    text = f"{magnitude:,.{decimals}f}" if grouped else f"{magnitude:.{decimals}f}"
    return f"{sign}{dollar}{text}"


def jitter_number(raw: str, field: Field, rng: random.Random) -> str:
    """``raw`` with its first number (the one :meth:`Field.parse` reads) jittered."""
    old = field.parse(raw)
    if not isinstance(old, float) or old == 0:
        return raw  # zero stays zero: a landlocked country keeps no coastline
    for match in NUMBER.finditer(raw):
        sign, digits, frac = match.groups()
        magnitude = float(f"{digits.replace(',', '')}{frac or ''}")
        new = _jitter(magnitude, rng)
        decimals = len(frac) - 1 if frac else 0
        share = bool(field.unit and field.unit.startswith("%") and not sign)
        if share and new > 100:  # a share cannot pass 100 %: jitter down by as much instead
            new = max(0.0, 2 * magnitude - new)
        if decimals == 0 and round(new) == magnitude:  # small whole numbers move by one
            step = 1 if magnitude < 2 else rng.choice((1, -1))
            new = magnitude - 1 if share and magnitude + step > 100 else magnitude + step
        candidate = raw[: match.start()] + _format_token(match, new) + raw[match.end() :]
        parsed = field.parse(candidate)
        if isinstance(parsed, float) and parsed != old:
            return candidate
    return raw


def shift_date(raw: str, rng: random.Random) -> str:
    """``raw`` with its leading day-month-year moved by 90 days to ten years."""
    text = raw if DATE_DMY.match(raw) else clean_text(raw)
    m = DATE_DMY.match(text)
    if m is None:
        return raw
    day, month, year = int(m.group(1)), MONTHS.index(m.group(2)) + 1, int(m.group(3))
    try:
        date = dt.date(year, month, day)
    except ValueError:
        return raw
    days = rng.randint(90, 3650) * (1 if rng.random() < 0.5 else -1)
    try:
        moved = date + dt.timedelta(days=days)
    except OverflowError:
        moved = date - dt.timedelta(days=days)
    return f"{moved.day} {MONTHS[moved.month - 1]} {moved.year}" + text[m.end() :]


def _replace(entity: Entity, path: tuple[str, ...], old: str, new: str, twins: dict[tuple[str, ...], list[tuple[str, ...]]]) -> None:
    set_value(entity.data, path, new)
    # The same labelled entry repeated in another section (urbanization, land use ...).
    for other in twins.get(path[-2:], ()):
        if other != path and entity.value(other) == old:
            set_value(entity.data, other, new)


def _twins(entity: Entity) -> dict[tuple[str, ...], list[tuple[str, ...]]]:
    """Leaf paths of an entry by their last two keys."""
    out: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for path, _ in leaves(entity.data):
        out.setdefault(path[-2:], []).append(path)
    return out


def counterfactual(factbook: Factbook, seed: int, fields: Iterable[Field] = FIELDS) -> Factbook:
    """The world of ``seed``: the real Factbook for 0, a changed copy otherwise."""
    if seed == 0:
        return factbook
    world = factbook.copy()
    places = sorted(world, key=lambda e: e.code)
    twins = {e.code: _twins(e) for e in places}
    for field in fields:
        rng = _rng(seed, field)
        present: list[tuple[Entity, tuple[str, ...], str]] = []
        for entity in places:
            path = resolve_path(entity.data, field.path)
            raw = entity.value(field.path)
            if path is not None and raw is not None and field.parse(raw) is not None:
                present.append((entity, path, raw))
        if field.type == "number":
            for entity, path, raw in present:
                _replace(entity, path, raw, jitter_number(raw, field, rng), twins[entity.code])
        elif field.type == "date":
            for entity, path, raw in present:
                _replace(entity, path, raw, shift_date(raw, rng), twins[entity.code])
        else:
            donors = [raw for _, _, raw in present]
            rng.shuffle(donors)
            for (entity, path, raw), donor in zip(present, donors):
                _replace(entity, path, raw, donor, twins[entity.code])
    return world
