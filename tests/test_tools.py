"""@tool: schema from type hints and docstrings, validation and errors as messages."""

from __future__ import annotations

import json
from typing import Literal

import pytest

from parlswarm import ToolContext, ToolError, Toolset, tool


@tool
def add(a: int, b: int = 2) -> int:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


@tool
async def greet(name: str, style: Literal["plain", "loud"] = "plain") -> str:
    """Greet someone."""
    return f"hello {name}" if style == "plain" else f"HELLO {name.upper()}"


@tool
def broken(x: str) -> str:
    """Always fails."""
    raise RuntimeError(f"disk on fire while reading {x}")


@tool
def refuses(x: str) -> str:
    """Refuses politely."""
    raise ToolError(f"cannot handle {x!r}")


@tool
def whoami(ctx: ToolContext) -> str:
    """Reports the calling agent."""
    return f"{ctx.agent_id}@{ctx.step}"


def test_schema_from_hints_and_docstring() -> None:
    spec = add.spec
    assert spec.name == "add"
    assert spec.description == "Add two numbers."
    props = spec.parameters["properties"]
    assert props["a"] == {"type": "integer", "description": "The first number."}
    assert props["b"]["default"] == 2
    assert spec.parameters["required"] == ["a"]
    assert greet.spec.parameters["properties"]["style"]["enum"] == ["plain", "loud"]


def test_context_parameter_is_hidden_from_the_model() -> None:
    assert "ctx" not in whoami.spec.parameters.get("properties", {})


async def test_sync_and_async_tools_run() -> None:
    out = await add.invoke('{"a": 3}')
    assert out.ok and out.content == "5"
    out = await greet.invoke({"name": "ada", "style": "loud"})
    assert out.ok and out.content == "HELLO ADA"
    out = await whoami.invoke("{}", ToolContext(agent_id="a1", step=4, call_id="c"))
    assert out.content == "a1@4"


@pytest.mark.parametrize(
    "arguments, expected",
    [
        ('{"a": "seven"}', "error: invalid arguments for tool 'add': 'a': Input should be a valid integer"),
        ("{}", "error: invalid arguments for tool 'add': 'a': Field required"),
        ('{"a": 1, "c": 3}', "error: invalid arguments for tool 'add': 'c': Extra inputs are not permitted"),
        ('{"a": 1', "error: arguments for tool 'add' are not valid JSON"),
        ("[1, 2]", "error: arguments for tool 'add' must be a JSON object"),
    ],
)
async def test_bad_arguments_become_tool_errors(arguments: str, expected: str) -> None:
    out = await add.invoke(arguments)
    assert not out.ok
    assert isinstance(out.content, str) and out.content.startswith(expected)


async def test_exceptions_become_error_messages() -> None:
    out = await broken.invoke({"x": "f.txt"})
    assert not out.ok and out.content == "error: tool 'broken' failed: RuntimeError: disk on fire while reading f.txt"
    out = await refuses.invoke({"x": "y"})
    assert not out.ok and out.content == "error: cannot handle 'y'"


async def test_structured_results_are_json() -> None:
    @tool
    def rows(n: int) -> list[dict[str, int]]:
        """Rows."""
        return [{"i": i} for i in range(n)]

    out = await rows.invoke({"n": 2})
    assert json.loads(out.content) == [{"i": 0}, {"i": 1}]  # type: ignore[arg-type]


def test_toolset_subset_and_errors() -> None:
    menu = Toolset([add, greet])
    assert menu.subset(["greet"]).names() == ["greet"]
    with pytest.raises(ToolError, match="unknown tool\\(s\\) 'nope'; available: add, greet"):
        menu.subset(["nope"])
    with pytest.raises(ValueError, match="duplicate tool name 'add'"):
        Toolset([add, add])
