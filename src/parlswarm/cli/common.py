"""What the sub-commands share: consoles and the conversion of library errors to one line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

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
    except (ModelSpecError, ModelError, FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None


def guarded(fn: Callable[[], T]) -> T:
    with user_errors():
        return fn()
