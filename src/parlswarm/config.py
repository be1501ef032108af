"""Loading YAML config files into pydantic models, with errors that name the file and the field.

A file may start from another: ``extends: other.yaml`` (relative to the file) reads that one
first and lays this one's settings over it, mapping by mapping, so that a config which differs
from another in a few keys says only those (a list or a value is replaced whole).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

EXTENDS = "extends"


def load_yaml_model(cls: type[M], path: str | Path, what: str, overrides: dict[str, Any] | None = None) -> M:
    """``cls`` validated from the YAML file at ``path`` (a mapping), with ``overrides`` applied on top.

    Raises FileNotFoundError or ValueError with one line naming ``what``, the file and each bad field.
    """
    path = Path(path)
    data = _config_mapping(path, what)
    data.update(overrides or {})
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{what} {path}: {problems}") from None


def _config_mapping(path: Path, what: str, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The settings of the YAML file at ``path``, those of the file it ``extends`` beneath them."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        named_by = f" (extended by {_chain[-1]})" if _chain else ""
        raise FileNotFoundError(f"{what} not found: {path}{named_by}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{what} {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path} must be a mapping of settings, not {type(data).__name__}")
    parent = data.pop(EXTENDS, None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent:
        raise ValueError(f"{what} {path}: {EXTENDS} must name one config file, not {parent!r}")
    chain = (*_chain, path.resolve())
    parent_path = (path.parent / parent).resolve()
    if parent_path in chain:
        loop = " -> ".join(str(p) for p in (*chain, parent_path))
        raise ValueError(f"{what} {path}: {EXTENDS} comes back to a file it started from: {loop}")
    return _laid_over(_config_mapping(parent_path, what, chain), data)


def _laid_over(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        below = merged.get(key)
        merged[key] = _laid_over(below, value) if isinstance(below, dict) and isinstance(value, dict) else value
    return merged
