"""Secrets never leave the process: redaction of API keys and credentials in what is written.

What counts as a secret: the values of the known key variables (``OPENAI_API_KEY``,
``MOONSHOT_API_KEY``, ``KIMI_API_KEY`` ...) and of any variable whose name ends in
``API_KEY``, ``_TOKEN``, ``_SECRET`` or ``PASSWORD``; keys handed to a model in code
(:func:`register_secret`); and whatever follows ``Authorization:``/``Bearer``, ``sk-``
style keys, and passwords in URLs. Redaction replaces them with ``***``.

It is applied to trace events as they are emitted (:func:`redact_event`, which the run
context installs), to everything the journal writes, and to log records
(:func:`install_log_redaction`). The secret-free environment for child processes
(:func:`clean_environment`) also lives here.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import weakref
from typing import Any

from pydantic import BaseModel

MASK = "***"

# Variables that hold keys by name, and the shape of names that usually do.
KNOWN_SECRET_ENVS = (
    "OPENAI_API_KEY",
    "MOONSHOT_API_KEY",
    "KIMI_API_KEY",
    "ANTHROPIC_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
)
_SECRET_NAME = re.compile(r"(API_?KEY|_TOKEN|_SECRET|SECRET_KEY|PASSWORD|PASSWD)$", re.IGNORECASE)
_MIN_SECRET = 8  # shorter values ("1", "true") are settings, not secrets
_ENV_TTL = 0.25  # seconds between reads of the environment; refresh_secrets() forces one

# Credentials recognisable by their shape, wherever they come from.
_PATTERNS = [
    # Authorization / api-key headers in any notation: "authorization: Bearer x", {"api-key": "x"}
    r"(?<![A-Za-z])(?i:authorization|proxy-authorization|x-api-key|api-key|api_key)"
    r"[\"']?\s*[:=]\s*[\"']?(?i:(?:bearer|basic|token)\s+)?(?P<h>[^\s\"',;}]+)",
    r"\b(?i:bearer)\s+(?P<b>[A-Za-z0-9._~+/=-]{8,})",
    r"\b(?P<k>sk-[A-Za-z0-9_-]{16,})",  # OpenAI / Moonshot style keys
    r"\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:(?P<u>[^/\s@]+)@",  # scheme://user:PASSWORD@host
]
# Substrings without which no pattern can match: checked first, because plain `in` is cheap.
_HINTS = ("earer", "EARER", "uthoriz", "UTHORIZ", "pi-key", "pi_key", "PI-KEY", "PI_KEY", "sk-", "://")


class Redactor:
    """Replaces secrets in text with ``***``.

    The environment is read again at most every 0.25 s (reading it on every call would cost
    more than the redaction itself), and at once after :meth:`refresh` or :meth:`register`.
    """

    def __init__(self) -> None:
        self._extra: set[str] = set()
        self._lock = threading.Lock()
        self._read_at = -1.0
        self._literals: tuple[str, ...] = ()
        self._regex: re.Pattern[str] = re.compile("|".join(_PATTERNS))

    def register(self, secret: str | None) -> None:
        """Treat ``secret`` as a secret from now on (keys given to a model in code)."""
        if secret and len(secret) >= _MIN_SECRET and secret != "EMPTY":
            with self._lock:
                self._extra.add(secret)
            self.refresh()

    def secrets(self) -> set[str]:
        found = set(self._extra)
        for name, value in os.environ.items():
            if (name in KNOWN_SECRET_ENVS or _SECRET_NAME.search(name)) and len(value) >= _MIN_SECRET:
                found.add(value)
        return found

    def refresh(self) -> None:
        """Read the secrets from the environment now."""
        with self._lock:
            literals = tuple(sorted(self.secrets(), key=len, reverse=True))
            if literals != self._literals:
                parts = [f"(?P<s>{'|'.join(map(re.escape, literals))})"] if literals else []
                self._regex = re.compile("|".join([*parts, *_PATTERNS]))
                self._literals = literals
            self._read_at = time.monotonic()

    def __call__(self, text: str) -> str:
        if len(text) < _MIN_SECRET:
            return text
        if time.monotonic() - self._read_at > _ENV_TTL:
            self.refresh()
        if not any(s in text for s in self._literals) and not any(h in text for h in _HINTS):
            return text
        return self._regex.sub(_mask_match, text)


def _mask_match(m: re.Match[str]) -> str:
    # Keep the label ("Authorization: Bearer "), mask only the credential itself.
    for group in ("s", "h", "b", "k", "u"):
        try:
            start, end = m.span(group)
        except IndexError:
            continue
        if start >= 0:
            whole = m.group(0)
            offset = m.start(0)
            return whole[: start - offset] + MASK + whole[end - offset :]
    return MASK


_REDACTOR = Redactor()


def redact(text: str) -> str:
    """``text`` with every secret replaced by ``***``."""
    return _REDACTOR(text)


def register_secret(secret: str | None) -> None:
    """Redact ``secret`` from everything written from now on."""
    _REDACTOR.register(secret)


def refresh_secrets() -> None:
    """Read secret variables from the environment again now (after changing it)."""
    _REDACTOR.refresh()


def redact_data(value: Any) -> Any:
    """A copy of ``value`` (str, list, dict, nested) with secrets redacted in its strings."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_data(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_data(v) for v in value)
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, BaseModel):
        redact_model(value)
    return value


def redact_model(model: BaseModel) -> BaseModel:
    """Redact the string fields of a pydantic model in place (nested models and containers too)."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, (str, list, dict, tuple)):
            clean = redact_data(value)
            if clean != value:
                setattr(model, name, clean)
        elif isinstance(value, BaseModel):
            redact_model(value)
    return model


def redact_content(content: Any) -> Any:
    """Message content (a str or a list of parts) with secrets redacted in its text."""
    if isinstance(content, str):
        return redact(content)
    if isinstance(content, list):
        for part in content:
            if isinstance(part, BaseModel):
                redact_model(part)
    return content


def redact_event(event: BaseModel) -> None:
    """Trace listener: scrub an event in place before anything writes it."""
    redact_model(event)


_REDACTING: weakref.WeakSet[Any] = weakref.WeakSet()


def install_redaction(trace: Any) -> None:
    """Make ``trace`` scrub each event as it is emitted (once per trace, however often asked).

    Listeners subscribed before it see events unscrubbed: install it first.
    """
    if trace not in _REDACTING:
        _REDACTING.add(trace)
        trace.subscribe(redact_event)


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in messages and tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Add a :class:`RedactingFilter` to every handler of ``logger`` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


# What a child process may inherit: enough to run, nothing that authenticates.
_SAFE_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SYSTEMROOT")


def clean_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for untrusted child processes: no keys, tokens or proxies with credentials."""
    env = {k: os.environ[k] for k in _SAFE_ENV if k in os.environ}
    env.update(extra or {})
    return env


__all__ = [
    "MASK",
    "RedactingFilter",
    "Redactor",
    "clean_environment",
    "install_log_redaction",
    "install_redaction",
    "redact",
    "redact_content",
    "redact_data",
    "redact_event",
    "redact_model",
    "refresh_secrets",
    "register_secret",
]
