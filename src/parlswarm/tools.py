"""Tools: typed Python functions that models can call.

``@tool`` reads a function's signature and docstring; pydantic builds the JSON Schema the
model sees and validates the arguments it sends. Bad arguments and exceptions become
error text for the model, never a crash of the run.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, get_type_hints, overload

import docstring_parser
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from parlswarm.types import Content, ImagePart, TextPart, ToolSpec

log = logging.getLogger(__name__)


class ToolError(Exception):
    """Raise inside a tool to send a clear error message back to the model.

    ``kind`` names the failure in the trace (``ToolFinished.error``).
    """

    def __init__(self, message: str = "", kind: str = "tool_error") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class ToolContext:
    """What the runtime tells a tool about the call. Declare a parameter of this type to get it."""

    agent_id: str
    step: int
    call_id: str
    run: Any = None  # the swarm run state (parlswarm.swarm.RunState) when inside a swarm
    index: int = 0  # position of the call among its turn's tool calls


@dataclass
class ToolOutcome:
    ok: bool
    content: Content
    error: str | None = None  # the failure's kind: bad_json, bad_arguments, tool_error, exception


def _format_validation_error(tool_name: str, exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        problems.append(f"'{where}': {err['msg']}")
    return f"error: invalid arguments for tool '{tool_name}': " + "; ".join(problems)


def _to_content(value: Any) -> Content:
    if isinstance(value, str):
        return value
    if isinstance(value, (TextPart, ImagePart)):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, (TextPart, ImagePart)) for v in value):
        return list(value)
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return json.dumps(value, ensure_ascii=False, default=str)


class Tool:
    """A callable tool with a JSON Schema. Build it with :func:`tool`."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        deterministic: bool = False,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        # The same arguments give the same result for the whole run (a read of data that does not
        # change, no side effects): calling it again with them can teach the model nothing new.
        self.deterministic = deterministic
        doc = docstring_parser.parse(inspect.getdoc(fn) or "")
        summary = "\n\n".join(p for p in (doc.short_description, doc.long_description) if p)
        self.description = description or summary or self.name
        param_docs = {p.arg_name: p.description for p in doc.params}
        hints = get_type_hints(fn)
        self.context_param: str | None = None
        fields: dict[str, Any] = {}
        for pname, param in inspect.signature(fn).parameters.items():
            annotation = hints.get(pname, Any)
            if annotation is ToolContext:
                self.context_param = pname
                continue
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise TypeError(f"tool '{self.name}': *args/**kwargs are not supported")
            default = ... if param.default is param.empty else param.default
            fields[pname] = (annotation, Field(default, description=param_docs.get(pname)))
        self.args_model: type[BaseModel] = create_model(  # type: ignore[call-overload]
            f"{self.name}_arguments", __config__=ConfigDict(extra="forbid"), **fields
        )
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        self.parameters: dict[str, Any] = schema
        self.is_async = inspect.iscoroutinefunction(fn)

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"

    def parse_arguments(self, arguments: str | dict[str, Any]) -> BaseModel:
        """Validate arguments; raises ToolError with a message meant for the model."""
        if isinstance(arguments, str):
            try:
                data = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as exc:
                raise ToolError(
                    f"error: arguments for tool '{self.name}' are not valid JSON ({exc.msg} at "
                    f"position {exc.pos}); send a JSON object",
                    kind="bad_json",
                ) from None
        else:
            data = arguments
        if not isinstance(data, dict):
            raise ToolError(f"error: arguments for tool '{self.name}' must be a JSON object", kind="bad_json")
        try:
            return self.args_model.model_validate(data)
        except ValidationError as exc:
            raise ToolError(_format_validation_error(self.name, exc), kind="bad_arguments") from None

    async def invoke(self, arguments: str | dict[str, Any], ctx: ToolContext | None = None) -> ToolOutcome:
        """Run the tool. Never raises except on cancellation."""
        try:
            parsed = self.parse_arguments(arguments)
            kwargs = {k: getattr(parsed, k) for k in type(parsed).model_fields}
            if self.context_param is not None:
                kwargs[self.context_param] = ctx
            if self.is_async:
                value = await self.fn(**kwargs)
            else:
                value = await asyncio.to_thread(self.fn, **kwargs)
            return ToolOutcome(ok=True, content=_to_content(value))
        except ToolError as exc:
            msg = str(exc)
            return ToolOutcome(ok=False, content=msg if msg.startswith("error") else f"error: {msg}", error=exc.kind)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a tool bug must not end the run
            log.debug("tool %s raised", self.name, exc_info=True)
            return ToolOutcome(
                ok=False, content=f"error: tool '{self.name}' failed: {type(exc).__name__}: {exc}", error="exception"
            )

    async def __call__(self, **kwargs: Any) -> Any:
        """Call the underlying function directly (for tests and scripts)."""
        result = self.fn(**kwargs)
        return await result if inspect.isawaitable(result) else result


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    *, name: str | None = None, description: str | None = None, deterministic: bool = False
) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    deterministic: bool = False,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a typed function (sync or async) into a :class:`Tool`.

    The description comes from the docstring, parameter descriptions from its ``Args:``
    section, the schema from the type hints. ``deterministic``: see :attr:`Tool.deterministic`
    (the runtime's guard against repeated calls, ``Budgets.repeated_calls``, acts on such tools only).
    """
    if fn is not None:
        return Tool(fn, name=name, description=description, deterministic=deterministic)
    return lambda f: Tool(f, name=name, description=description, deterministic=deterministic)


class Toolset:
    """An ordered menu of tools by name."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.add(t)

    def add(self, t: Tool) -> None:
        if t.name in self._tools:
            raise ValueError(f"duplicate tool name '{t.name}'")
        self._tools[t.name] = t

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def subset(self, names: Sequence[str]) -> Toolset:
        unknown = [n for n in names if n not in self._tools]
        if unknown:
            raise ToolError(
                f"unknown tool(s) {', '.join(map(repr, unknown))}; available: {', '.join(self._tools) or 'none'}"
            )
        return Toolset(self._tools[n] for n in names)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __add__(self, other: Iterable[Tool]) -> Toolset:
        return Toolset([*self, *other])

    def specs(self) -> list[ToolSpec]:
        return [t.spec for t in self._tools.values()]
