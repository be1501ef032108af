"""Responses to score, from a JSONL file or a folder of text files.

- **JSONL**: one object a line, ``{"instance_id": ..., "response": "...", "trial": 0}``.
  ``trial`` is optional (0); WideSearch's own response files, which name it ``trial_idx``
  and carry ``messages``, read unchanged.
- **Folder**: ``<instance_id>.md`` or ``<instance_id>.txt`` holds trial 0; trial k lives in
  a sub-folder ``trial_<k>/`` (or ``<k>/``) with the same file names.

A bad line or file becomes an :class:`InputError` and the rest still load; a second
response for the same task and trial is an error and the first one is kept.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import BaseModel, Field

from parlswarm.scoring.tasks import InputError

RESPONSE_SUFFIXES = (".md", ".txt")
_TRIAL_DIR = re.compile(r"^(?:trial_?)?(\d+)$")


class Response(BaseModel):
    instance_id: str
    response: str
    trial: int = 0
    source: str = ""  # file, and line for JSONL


class ResponseSet(BaseModel):
    path: str
    responses: list[Response] = Field(default_factory=list)
    errors: list[InputError] = Field(default_factory=list)

    def by_task(self) -> dict[str, dict[int, Response]]:
        out: dict[str, dict[int, Response]] = {}
        for r in self.responses:
            out.setdefault(r.instance_id, {})[r.trial] = r
        return out


def _add(result: ResponseSet, response: Response, seen: dict[tuple[str, int], str], error_file: str, line: int | None) -> None:
    key = (response.instance_id, response.trial)
    if key in seen:
        result.errors.append(
            InputError(
                file=error_file,
                line=line,
                instance_id=response.instance_id,
                message=f"a second response for trial {response.trial} (the first, at {seen[key]}, is kept)",
            )
        )
        return
    seen[key] = response.source
    result.responses.append(response)


def _from_jsonl(path: Path) -> ResponseSet:
    result = ResponseSet(path=str(path))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"responses file {path} is not UTF-8 text: {exc}") from None
    seen: dict[tuple[str, int], str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue

        def bad(message: str, instance_id: str | None = None, number: int = number) -> None:
            result.errors.append(InputError(file=str(path), line=number, instance_id=instance_id, message=message))

        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            bad(f"not valid JSON: {exc}")
            continue
        if not isinstance(record, dict):
            bad("a response line must be a JSON object")
            continue
        instance_id = record.get("instance_id")
        if not isinstance(instance_id, str) or not instance_id:
            bad("no instance_id")
            continue
        text_ = record.get("response")
        if text_ is None:
            text_ = ""  # WideSearch writes None for a run that produced no answer: it scores 0
        if not isinstance(text_, str):
            bad("response must be a string", instance_id)
            continue
        trial = record.get("trial", record.get("trial_idx"))
        if trial is None:
            trial = 0
        if isinstance(trial, bool) or not isinstance(trial, int) or trial < 0:
            bad(f"trial must be a whole number >= 0, not {trial!r}", instance_id)
            continue
        _add(result, Response(instance_id=instance_id, response=text_, trial=trial, source=f"{path} line {number}"), seen, str(path), number)
    return result


def _from_folder(path: Path) -> ResponseSet:
    result = ResponseSet(path=str(path))
    seen: dict[tuple[str, int], str] = {}
    folders: list[tuple[int, Path]] = [(0, path)]
    for sub in sorted(p for p in path.iterdir() if p.is_dir()):
        m = _TRIAL_DIR.match(sub.name)
        if m:
            folders.append((int(m.group(1)), sub))
    for trial, folder in folders:
        for file in sorted(folder.iterdir()):
            if not file.is_file() or file.suffix.lower() not in RESPONSE_SUFFIXES:
                continue
            try:
                text = file.read_text(encoding="utf-8-sig")
            except UnicodeDecodeError as exc:
                result.errors.append(InputError(file=str(file), instance_id=file.stem, message=f"not UTF-8 text: {exc}"))
                continue
            _add(result, Response(instance_id=file.stem, response=text, trial=trial, source=str(file)), seen, str(file), None)
    return result


def load_responses(path: str | Path) -> ResponseSet:
    """Responses from a JSONL file or a folder (see the module's docstring)."""
    path = Path(path)
    if path.is_dir():
        return _from_folder(path)
    if not path.exists():
        raise FileNotFoundError(f"responses not found: {path}")
    return _from_jsonl(path)


__all__ = ["RESPONSE_SUFFIXES", "Response", "ResponseSet", "load_responses"]
