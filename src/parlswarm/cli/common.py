"""What the sub-commands share: consoles and the conversion of library errors to one line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from pydantic import ValidationError
from rich.console import Console

from parlswarm.models.base import ModelError, ModelSpecError

console = Console(soft_wrap=True)
console_err = Console(stderr=True, soft_wrap=True)

T = TypeVar("T")


class UserError(Exception):
    """An error the user caused and can fix; printed as one line, no traceback."""


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's user-facing errors into :class:`UserError`."""
    try:
        yield
    except ValidationError as exc:
        raise UserError(describe_validation_error(exc)) from None
    except (ModelSpecError, ModelError, FileNotFoundError, ValueError) as exc:
        raise UserError(" ".join(str(exc).split())) from None  # one line, whatever the library wrote
    except OSError as exc:  # a path that cannot be written or read: name it
        where = f"{exc.filename}: " if exc.filename else ""
        raise UserError(f"{where}{exc.strerror or exc}") from None


def describe_validation_error(exc: ValidationError) -> str:
    """A pydantic error as one line: what was invalid, where, and why."""
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(value)"
        value = f" (got {err['input']!r})" if not isinstance(err.get("input"), (dict, list)) else ""
        problems.append(f"{where}: {err['msg']}{value}")
    return f"invalid {exc.title}: " + "; ".join(problems)


def guarded(fn: Callable[[], T]) -> T:
    with user_errors():
        return fn()
