"""Prices per model and the cost of token usage.

Prices are per million tokens: input, cached input and output. A table maps model names
(or shell-style patterns such as ``gpt-4o*``) to prices. parlswarm ships no prices of its
own: providers change them, and a stale table would report wrong costs with confidence.

A YAML/JSON price file (the figures are illustrative, not a provider's prices)::

    currency: USD
    models:
      kimi-k2.5: {input: 0.60, cached_input: 0.15, output: 2.50}
      "gpt-4o-mini*": {input: 0.15, cached_input: 0.075, output: 0.60}

or inline on the command line: ``kimi-k2.5=0.60/0.15/2.50;gpt-4o-mini*=0.15/0.60``
(``input/output`` or ``input/cached/output``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from parlswarm.types import Budgets, Usage

PER = 1_000_000


class ModelPrice(BaseModel):
    """What one model costs per million tokens."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0)
    cached_input: float | None = Field(None, ge=0)  # the input price when omitted
    output: float = Field(ge=0)

    def cost(self, usage: Usage) -> float:
        # OpenAI-style usage counts cached tokens inside prompt_tokens.
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        return (
            (usage.prompt_tokens - cached) * self.input
            + cached * cached_price
            + usage.completion_tokens * self.output
        ) / PER


class Prices(BaseModel):
    """A price table: model name or pattern → :class:`ModelPrice`."""

    model_config = ConfigDict(extra="forbid")

    currency: str = "USD"
    models: dict[str, ModelPrice] = Field(default_factory=dict)

    def price(self, *names: str) -> ModelPrice | None:
        """The price of the first of ``names`` the table knows; exact names before patterns."""
        for name in names:
            if name and name in self.models:
                return self.models[name]
        for name in names:
            if not name:
                continue
            for pattern, price in self.models.items():
                if fnmatch.fnmatchcase(name, pattern):
                    return price
        return None

    def cost(self, usage: Usage, *names: str) -> float | None:
        """The cost of ``usage`` by the first priced model of ``names``; None when none is priced."""
        price = self.price(*names)
        return None if price is None else price.cost(usage)

    def format(self, amount: float) -> str:
        symbol = {"USD": "$", "EUR": "€", "GBP": "£", "CNY": "¥"}.get(self.currency.upper())
        digits = 4 if amount < 1 else 2
        return f"{symbol}{amount:.{digits}f}" if symbol else f"{amount:.{digits}f} {self.currency}"

    @classmethod
    def from_data(cls, data: object, source: str = "prices") -> Prices:
        if isinstance(data, dict) and "models" not in data and "currency" not in data:
            data = {"models": data}  # a bare mapping of model → price is accepted too
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"{source}: {where}: {first['msg']}") from None

    @classmethod
    def load(cls, path: str | Path) -> Prices:
        """Read a YAML or JSON price file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(f"price file not found: {path}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"price file {path} is not valid YAML/JSON: {exc}") from None
        return cls.from_data(data, str(path))

    @classmethod
    def parse(cls, spec: str) -> Prices:
        """``MODEL=IN/OUT`` or ``MODEL=IN/CACHED/OUT`` entries separated by ``;``."""
        models: dict[str, ModelPrice] = {}
        for entry in filter(None, (e.strip() for e in spec.split(";"))):
            name, sep, numbers = entry.partition("=")
            parts = numbers.split("/")
            if not sep or not name.strip() or len(parts) not in (2, 3):
                raise ValueError(
                    f"price '{entry}' is not MODEL=INPUT/OUTPUT or MODEL=INPUT/CACHED/OUTPUT "
                    "(USD per million tokens)"
                )
            try:
                values = [float(p) for p in parts]
            except ValueError:
                raise ValueError(f"price '{entry}': prices must be numbers") from None
            fields = ("input", "output") if len(values) == 2 else ("input", "cached_input", "output")
            models[name.strip()] = ModelPrice.model_validate(dict(zip(fields, values)))
        if not models:
            raise ValueError("--prices names no model")
        return cls(models=models)

    @classmethod
    def from_option(cls, value: str) -> Prices:
        """A ``--prices`` value: a price file, or inline entries (anything with ``=``)."""
        return cls.parse(value) if "=" in value else cls.load(value)


def require_prices(budgets: Budgets, prices: Prices | None, model_names: Iterable[str]) -> None:
    """A cost budget needs a price for every model of the run; say which one is missing."""
    if budgets.max_cost is None:
        return
    for name in model_names:
        if prices is None or prices.price(name) is None:
            raise ValueError(
                f"the cost budget (max_cost={budgets.max_cost:g}) needs a price for model '{name}'; "
                "give one with --prices (see docs/observability.md)"
            )


__all__ = ["ModelPrice", "Prices", "require_prices"]
