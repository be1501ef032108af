"""The real openai-SDK path, over HTTP to a stub server on 127.0.0.1."""

from __future__ import annotations

from typing import Any

import pytest

from parlswarm import Swarm, tool
from parlswarm.models import ModelError, OpenAICompatModel
from parlswarm.models.openai_compat import MOONSHOT, SELF_HOSTED
from parlswarm.testing.stub_server import StubServer
from parlswarm.types import UserMessage


@tool
def lookup(key: str) -> str:
    """Look up a key."""
    return f"value:{key}"


def responder(body: dict[str, Any]) -> dict[str, Any] | str:
    messages = body["messages"]
    assistant_turns = [m for m in messages if m["role"] == "assistant"]
    if not assistant_turns:
        return {
            "reasoning_content": "I should look up both keys at once.",
            "tool_calls": [
                {"name": "lookup", "arguments": {"key": "a"}},
                {"name": "lookup", "arguments": {"key": "b"}},
            ],
        }
    tool_results = [m["content"] for m in messages if m["role"] == "tool"]
    return "answer: " + ", ".join(tool_results)


async def test_tool_calls_in_one_turn_over_http() -> None:
    with StubServer(responder, record=True) as server:
        model = OpenAICompatModel("stub-model", base_url=server.base_url, preset=SELF_HOSTED)
        result = await Swarm(model, tools=[lookup], mode="single").run("find a and b")
        await model.aclose()
    assert result.answer == "answer: value:a, value:b"
    assert result.summary.tool_calls == 2 and result.summary.steps == 2
    first = server.app.stats.bodies[0]
    assert first["model"] == "stub-model"
    assert [t["function"]["name"] for t in first["tools"]] == ["lookup"]
    assert first["tools"][0]["function"]["parameters"]["properties"]["key"]["type"] == "string"
    # Self-hosted preset: reasoning_content is not sent back.
    second = server.app.stats.bodies[1]
    assert "reasoning_content" not in second["messages"][2]
    assert result.summary.prompt_tokens == 20  # the stub reports 10 prompt tokens a call


async def test_kimi_preset_sends_reasoning_content_back_and_thinking_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOONSHOT_API_KEY", "sk-test-abc123")
    with StubServer(responder, record=True, api_key="sk-test-abc123") as server:
        model = OpenAICompatModel("kimi-k2.5", base_url=server.base_url, preset=MOONSHOT, thinking=True)
        result = await Swarm(model, tools=[lookup], mode="single").run("find a and b")
        await model.aclose()
    assert result.answer == "answer: value:a, value:b"
    first, second = server.app.stats.bodies
    assert first["thinking"] == {"type": "enabled"}
    assistant = second["messages"][2]
    assert assistant["role"] == "assistant" and len(assistant["tool_calls"]) == 2
    assert assistant["reasoning_content"] == "I should look up both keys at once."


async def test_thinking_off_goes_to_chat_template_for_self_hosted() -> None:
    with StubServer(lambda body: "ok", record=True) as server:
        model = OpenAICompatModel("qwen", base_url=server.base_url, preset=SELF_HOSTED, thinking=False)
        await Swarm(model, mode="single").run("hi")
        await model.aclose()
    assert server.app.stats.bodies[0]["chat_template_kwargs"] == {"thinking": False}


async def test_wrong_key_is_a_clear_error_without_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with StubServer(responder, api_key="the-right-key") as server:
        model = OpenAICompatModel("kimi-k2.5", base_url=server.base_url, preset=MOONSHOT,
                                  api_key="sk-wrong-999", max_retries=0)
        with pytest.raises(ModelError) as info:
            await model.complete([], [])
        await model.aclose()
    assert "authentication failed" in str(info.value) and "MOONSHOT_API_KEY" in str(info.value)
    assert "sk-wrong-999" not in str(info.value)


async def test_unreachable_endpoint_is_a_clear_error() -> None:
    model = OpenAICompatModel("m", base_url="http://127.0.0.1:9/v1", preset=SELF_HOSTED, max_retries=0)
    with pytest.raises(ModelError, match="cannot reach endpoint http://127.0.0.1:9/v1"):
        await model.complete([], [])
    await model.aclose()


async def test_orchestrator_over_http_assigns_in_parallel() -> None:
    def fan(body: dict[str, Any]) -> dict[str, Any] | str:
        from parlswarm.testing.responders import fanout

        return fanout({**body, "model": "fanout-5x3"})

    with StubServer(fan) as server:
        model = OpenAICompatModel("fanout", base_url=server.base_url, preset=SELF_HOSTED)
        result = await Swarm(model, tools=[tool(lambda key: key, name="lookup", description="x")]).run("go")
        await model.aclose()
    assert result.answer == "done: 5 results"
    assert result.summary.critical_steps == 3 + 4 and result.summary.subagents == 5


async def test_tool_choice_is_sent_only_when_a_turn_must_be_text() -> None:
    with StubServer(lambda body: "text", record=True) as server:
        model = OpenAICompatModel("stub-model", base_url=server.base_url, preset=SELF_HOSTED)
        await model.complete([UserMessage(content="go")], [lookup.spec])
        await model.complete([UserMessage(content="go")], [lookup.spec], tool_choice="none")
        await model.aclose()
    ordinary, text_only = server.app.stats.bodies
    assert "tool_choice" not in ordinary and text_only["tool_choice"] == "none"
