"""Loading YAML config files into pydantic models, with errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def load_yaml_model(cls: type[M], path: str | Path, what: str, overrides: dict[str, Any] | None = None) -> M:
    """``cls`` validated from the YAML file at ``path`` (a mapping), with ``overrides`` applied on top.

    Raises FileNotFoundError or ValueError with one line naming ``what``, the file and each bad field.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{what} {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path} must be a mapping of settings, not {type(data).__name__}")
    data.update(overrides or {})
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{what} {path}: {problems}") from None
