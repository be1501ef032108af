"""How messages and tools become a local model's prompt text, and its reply text a message.

Prompt format
    Messages are rendered with the tokenizer's own chat template; a tokenizer without one
    (the built-in nano model ships its own) gets :data:`NANO_CHAT_TEMPLATE`::

        <|system|>...<|end|><|user|>...<|end|><|assistant|>...<|end|><|tool|>...<|end|>

    The tools on offer are described at the end of the system message (as JSON schemas, or
    as one-line signatures with ``tool_format="compact"``, which the nano model uses).

Tool-call protocol (plain text, so that any model can follow it)
    An assistant turn is optional text followed by zero or more blocks::

        <tool_call>{"name": "search", "arguments": {"query": "capital of Chad"}}</tool_call>

    A block ends at ``</tool_call>``, at the next ``<tool_call>`` (small models often leave
    the closing tag out between calls, and the next opening tag says where the call ended)
    or at the end of the turn. A turn with no block is the final answer. Tool results come
    back as ``tool`` messages, one per call and in the order of the calls (templates that
    reject the ``tool`` role get them as ``user`` messages wrapped in
    ``<tool_response>...</tool_response>``). A block that is not valid JSON, or has no
    usable name, still becomes a :class:`ToolCall` whose arguments are the raw text, so the
    runtime answers it with a tool error the model can read; a bad generation never crashes
    a run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Literal

from parlswarm.types import AssistantMessage, Message, ToolCall, ToolSpec, content_text

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
TOOL_RESPONSE_OPEN = "<tool_response>"
TOOL_RESPONSE_CLOSE = "</tool_response>"
MALFORMED_TOOL = "malformed_tool_call"  # name given to a call whose name could not be read
FOLDED_RESULT = "(folded)"  # what an older tool result shows under context folding
FOLD_CALLS_NEED_RESULTS = "fold_tool_calls folds the turns keep_tool_results folds: set keep_tool_results too"

# Role markers and end-of-turn token of the nano model's template (special tokens of its tokenizer).
NANO_ROLES = ("system", "user", "assistant", "tool")
NANO_END = "<|end|>"
NANO_SPECIAL_TOKENS = [*(f"<|{r}|>" for r in NANO_ROLES), NANO_END, TOOL_CALL_OPEN, TOOL_CALL_CLOSE, "<|pad|>"]
NANO_CHAT_TEMPLATE = (
    "{%- for m in messages -%}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|assistant|>{%- endif -%}"
)
# End-of-turn tokens of common chat formats; those that are single tokens of a vocabulary stop decoding.
END_OF_TURN = ("<|end|>", "<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|endoftext|>", "</s>")

ToolFormat = Literal["json", "compact"]


def _param_signature(name: str, schema: dict[str, Any], required: bool) -> str:
    kind = schema.get("type")
    if kind is None and "anyOf" in schema:
        kinds = [s.get("type", "object") for s in schema["anyOf"] if s.get("type") != "null"]
        kind = "|".join(kinds) or "any"
    if kind == "array":
        item = schema.get("items", {}).get("type") or "object"
        kind = f"{item}[]"
    return f"{name}{'' if required else '?'}: {kind or 'object'}"


def render_tools(tools: Sequence[ToolSpec], style: ToolFormat = "json") -> str:
    """The tools section appended to the system message."""
    if not tools:
        return ""
    if style == "compact":
        lines = []
        for t in tools:
            props = t.parameters.get("properties", {})
            required = set(t.parameters.get("required", []))
            args = ", ".join(_param_signature(n, s, n in required) for n, s in props.items())
            first = t.description.strip().splitlines()[0] if t.description.strip() else ""
            lines.append(f"{t.name}({args}) - {first}")
        return "Tools:\n" + "\n".join(lines)
    specs = "\n".join(json.dumps(t.model_dump(), ensure_ascii=False) for t in tools)
    return (
        "# Tools\n"
        f"To call a tool, write {TOOL_CALL_OPEN}{{\"name\": <tool name>, \"arguments\": <JSON object>}}"
        f"{TOOL_CALL_CLOSE}. Several calls in one reply run in parallel; each result comes back "
        "in its own tool message. Reply without a tool call to give your final answer.\n"
        f"<tools>\n{specs}\n</tools>"
    )


def render_call(call: ToolCall) -> str:
    """One tool-call block; valid JSON arguments are re-serialised canonically."""
    try:
        arguments: Any = json.loads(call.function.arguments) if call.function.arguments.strip() else {}
    except json.JSONDecodeError:
        # Show the model what it wrote, exactly.
        return f'{TOOL_CALL_OPEN}{{"name": {json.dumps(call.function.name)}, "arguments": {call.function.arguments}}}{TOOL_CALL_CLOSE}'
    body = json.dumps({"name": call.function.name, "arguments": arguments}, ensure_ascii=False)
    return f"{TOOL_CALL_OPEN}{body}{TOOL_CALL_CLOSE}"


def render_assistant(message: AssistantMessage) -> str:
    parts = [message.content] if message.content else []
    parts.extend(render_call(c) for c in message.tool_calls or [])
    return "\n".join(parts)


def _fold_boundary(messages: Sequence[Message], keep: int | None) -> int:
    """The index of the first message context folding leaves whole (0: it folds nothing)."""
    if keep is None:
        return 0
    assistants = [i for i, m in enumerate(messages) if m.role == "assistant"]
    return assistants[-keep] if len(assistants) > keep else 0


def chat_dicts(
    messages: Sequence[Message],
    tools: Sequence[ToolSpec],
    tool_format: ToolFormat = "json",
    tool_role: str = "tool",
    keep_tool_results: int | None = None,
    fold_tool_calls: bool = False,
) -> list[dict[str, str]]:
    """Messages as ``{"role", "content"}`` dicts for a chat template, tools folded into the system turn.

    With ``keep_tool_results`` the tool results before the latest that many assistant turns
    read :data:`FOLDED_RESULT`; with ``fold_tool_calls`` as well, those older turns are their
    text alone (a turn without text is left out) and their results are left out.
    """
    if fold_tool_calls and keep_tool_results is None:
        raise ValueError(FOLD_CALLS_NEED_RESULTS)
    out: list[dict[str, str]] = []
    boundary = _fold_boundary(messages, keep_tool_results)
    tools_text = render_tools(tools, tool_format)
    if tools_text and (not messages or messages[0].role != "system"):
        out.append({"role": "system", "content": tools_text})
    for i, m in enumerate(messages):
        if m.role == "system":
            text = content_text(m.content)
            if i == 0 and tools_text:
                text = f"{text}\n\n{tools_text}" if text else tools_text
            out.append({"role": "system", "content": text})
        elif m.role == "user":
            out.append({"role": "user", "content": content_text(m.content)})
        elif m.role == "assistant":
            if fold_tool_calls and i < boundary:
                if m.content:
                    out.append({"role": "assistant", "content": content_text(m.content)})
            else:
                out.append({"role": "assistant", "content": render_assistant(m)})
        elif fold_tool_calls and i < boundary:
            continue
        else:
            text = FOLDED_RESULT if i < boundary else content_text(m.content)
            if tool_role == "tool":
                out.append({"role": "tool", "content": text})
            else:
                out.append({"role": tool_role, "content": f"{TOOL_RESPONSE_OPEN}\n{text}\n{TOOL_RESPONSE_CLOSE}"})
    return out


_CALL_BLOCK = re.compile(
    re.escape(TOOL_CALL_OPEN) + r"(.*?)(?:" + re.escape(TOOL_CALL_CLOSE) + r"|(?=" + re.escape(TOOL_CALL_OPEN) + r")|\Z)", re.S
)
_NAME_FIELD = re.compile(r'"name"\s*:\s*"([^"\\]{1,100})"')


def _parse_block(body: str, call_id: str) -> ToolCall:
    body = body.strip()
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("name"), str) and data["name"].strip():
        arguments = data.get("arguments", {})
        if isinstance(arguments, str):  # some models send the arguments as a JSON string
            return ToolCall.make(call_id, data["name"].strip(), arguments)
        if isinstance(arguments, dict):
            return ToolCall.make(call_id, data["name"].strip(), arguments)
        # Arguments that are not an object: pass them on so the tool reports the problem.
        return ToolCall.make(call_id, data["name"].strip(), json.dumps(arguments))
    # Unreadable block: keep the raw text as the arguments, which the runtime rejects as invalid JSON.
    match = _NAME_FIELD.search(body)
    name = match.group(1).strip() if match else MALFORMED_TOOL
    return ToolCall.make(call_id, name, body if body else "<empty tool call>")


def parse_reply(text: str, call_prefix: str = "call") -> AssistantMessage:
    """Split generated text into content and tool calls (see the module docstring)."""
    calls = [_parse_block(m.group(1), f"{call_prefix}_{i}") for i, m in enumerate(_CALL_BLOCK.finditer(text))]
    content = _CALL_BLOCK.sub("", text).strip()
    return AssistantMessage(content=content or (None if calls else ""), tool_calls=calls or None)
