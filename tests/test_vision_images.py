"""Images in the runtime: image parts from every source, through both model backends, to sub-agents."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from parlswarm import Swarm
from parlswarm.models import OpenAICompatModel, ScriptedModel, calls_reply, tool_reply
from parlswarm.models.openai_compat import SELF_HOSTED
from parlswarm.testing.stub_server import StubServer
from parlswarm.tools import ToolError
from parlswarm.types import ImagePart, Message, TextPart, ToolMessage, UserMessage
from parlswarm.vision.images import (
    ImageRegistry,
    decode_data_url,
    image_part,
    parse_box,
    to_data_url,
    to_pil,
    user_content,
)
from parlswarm.vision.messages import ToolImagesAsUser, hoist_tool_images


def _picture(width: int = 40, height: int = 30) -> Image.Image:
    img = Image.new("RGB", (width, height), (250, 250, 250))
    for x in range(width // 2):
        for y in range(height // 3):
            img.putpixel((x, y), (200, 30, 60))
    return img


def _png(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def test_image_parts_from_every_source_decode_to_the_same_pixels(tmp_path: Path) -> None:
    img = _picture()
    path = tmp_path / "a.png"
    path.write_bytes(_png(img))
    sources: list[Any] = [img, _png(img), path, str(path), to_data_url(img), image_part(img)]
    for source in sources:
        part = image_part(source)
        assert part.image_url.url.startswith("data:image/png;base64,")
        assert np.array_equal(np.asarray(to_pil(part)), np.asarray(img))


def test_encoded_bytes_pass_unchanged_and_keep_their_type(tmp_path: Path) -> None:
    jpeg = _png(_picture(), "JPEG")
    mime, data = decode_data_url(image_part(jpeg).image_url.url)
    assert (mime, data) == ("image/jpeg", jpeg)
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert to_pil(rgba).getpixel((0, 0)) == (255, 255, 255)  # transparency composited on white


def test_bad_image_sources_raise_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="image file not found"):
        image_part(tmp_path / "missing.png")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="not an image"):
        image_part(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="not an image data URL"):
        decode_data_url("http://example.com/a.png")
    with pytest.raises(ValueError, match="invalid base64"):
        to_pil("data:image/png;base64,@@@")
    bmp = _png(_picture(), "BMP")
    with pytest.raises(ValueError, match="BMP is not accepted"):
        image_part(bmp)
    assert to_pil(bmp).size == (40, 30)  # decoding for tools still works


def test_registry_ids_crops_and_errors() -> None:
    registry = ImageRegistry()
    assert registry.add(_picture(100, 80), "input") == "input"
    assert registry.add(_picture(), prefix="render") == "render-1"
    assert registry.add(_picture(), prefix="render") == "render-2"
    crop = registry.get("input[10, 20, 60, 70]")
    assert crop.size == (50, 50)
    assert registry.get("input[90,0,500,500]").size == (10, 80)  # clamped to the image
    with pytest.raises(ToolError, match="no image named 'nope'.*input, render-1, render-2"):
        registry.get("nope")
    with pytest.raises(ToolError, match="empty"):
        registry.get("input[50,50,50,60]")
    with pytest.raises(ToolError, match="four numbers"):
        registry.get("input[1,2,3]")
    with pytest.raises(ValueError, match="may hold only"):
        registry.add(_picture(), "bad name")
    assert parse_box([0, 0, 5, 5], (4, 4)) == (0, 0, 4, 4)


def _recording_responder(body: dict[str, Any]) -> str:
    return "seen"


async def test_image_parts_reach_an_openai_compatible_endpoint_unchanged() -> None:
    part = image_part(_picture(), detail="low")
    messages: list[Message] = [UserMessage(content=user_content("What is this?", _picture(), detail="low"))]
    with StubServer(_recording_responder, record=True) as server:
        model = OpenAICompatModel("stub-vl", base_url=server.base_url, preset=SELF_HOSTED)
        response = await model.complete(messages, [])
        await model.aclose()
    assert response.message.content == "seen"
    sent = server.app.stats.bodies[0]["messages"][0]
    assert sent == {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": part.image_url.url, "detail": "low"}},
        ],
    }


async def test_tool_result_images_can_travel_as_user_content() -> None:
    img = image_part(_picture())
    tool_msg = ToolMessage(tool_call_id="c1", content=[TextPart(text="rendered as render-1"), img])
    history: list[Message] = [UserMessage(content="go"), tool_msg]
    hoisted = hoist_tool_images(history)
    assert hoisted[1] == ToolMessage(tool_call_id="c1", content="rendered as render-1\n[1 image(s) follow in the next user message]")
    assert isinstance(hoisted[2], UserMessage) and hoisted[2].content[1] == img  # type: ignore[index]
    with StubServer(_recording_responder, record=True) as server:
        model = ToolImagesAsUser(OpenAICompatModel("stub-vl", base_url=server.base_url, preset=SELF_HOSTED))
        await model.complete(history, [])
        await model.model.aclose()  # type: ignore[attr-defined]
    roles = [m["role"] for m in server.app.stats.bodies[0]["messages"]]
    assert roles == ["user", "tool", "user"]
    assert history[1] is tool_msg and tool_msg.content[1] == img  # the agent's own history is untouched


async def test_scripted_model_sees_image_parts() -> None:
    seen: list[Sequence[Message]] = []

    def reply(messages: Sequence[Message]) -> str:
        seen.append(messages)
        return "ok"

    part = image_part(_picture())
    await ScriptedModel(reply).complete([UserMessage(content=[TextPart(text="look"), part])], [])
    assert seen[0][0].content[1] == part  # type: ignore[index]


def _subagent_script(log: list[list[Any]]) -> ScriptedModel:
    def reply(messages: Sequence[Message]) -> str:
        content = messages[-1].content
        log.append(content if isinstance(content, list) else [content])
        sizes = [to_pil(p).size for p in content if isinstance(p, ImagePart)] if isinstance(content, list) else []
        return f"saw {sizes}"

    return ScriptedModel(reply)


async def test_assign_task_and_spawn_swarm_hand_a_crop_to_the_subagent() -> None:
    registry = ImageRegistry()
    registry.add(_picture(200, 100), "input")
    orchestrator = ScriptedModel([
        tool_reply("create_subagent", {"name": "painter", "system_prompt": "Describe the image."}),
        calls_reply([
            ("assign_task", {"agent": "painter", "prompt": "top band", "image": "input[0,0,200,40]"}),
            ("assign_task", {"agent": "painter", "prompt": "no image"}),
            ("spawn_swarm", {"agents": [{"role": "left", "task": "left half", "image": "input[0,0,100,100]"}]}),
        ]),
        "done",
    ])
    log: list[list[Any]] = []
    result = await Swarm(orchestrator, subagent_model=_subagent_script(log)).run("draw", images=registry)
    assert result.answer == "done"
    tool_results = [m for m in result.trace.events if m.kind == "tool_finished"]
    texts = sorted(e.result for e in tool_results if e.tool in ("assign_task", "spawn_swarm"))  # type: ignore[union-attr]
    assert "saw []" in texts  # the plain task got no image
    assert "saw [(200, 40)]" in texts
    assert json.loads(next(t for t in texts if t.startswith("[")))[0]["result"] == "saw [(100, 100)]"
    first_messages = sorted(log, key=len)
    assert first_messages[0] == ["no image"]
    assert all(isinstance(c[0], TextPart) and isinstance(c[1], ImagePart) for c in first_messages[1:])


async def test_bad_image_references_come_back_to_the_orchestrator_as_errors() -> None:
    orchestrator = ScriptedModel([
        tool_reply("create_subagent", {"name": "painter", "system_prompt": "Describe."}),
        calls_reply([
            ("assign_task", {"agent": "painter", "prompt": "x", "image": "missing"}),
            ("spawn_swarm", {"agents": [{"role": "a", "task": "x", "image": "input[5,5,5,5]"}]}),
        ]),
        "done",
    ])
    log: list[list[Any]] = []
    registry = ImageRegistry()
    registry.add(_picture(), "input")
    result = await Swarm(orchestrator, subagent_model=_subagent_script(log)).run("draw", images=registry)
    errors = [e.result for e in result.trace.events if e.kind == "tool_finished" and not e.ok]  # type: ignore[union-attr]
    assert any("no image named 'missing'" in e for e in errors)
    assert any("empty" in e for e in errors)
    assert log == [] and result.summary.subagents == 0  # nothing was launched
    without = ScriptedModel([
        tool_reply("create_subagent", {"name": "p", "system_prompt": "D."}),
        tool_reply("assign_task", {"agent": "p", "prompt": "x", "image": "input"}),
        "done",
    ])
    result = await Swarm(without, subagent_model=_subagent_script(log)).run("draw")
    errors = [e.result for e in result.trace.events if e.kind == "tool_finished" and not e.ok]  # type: ignore[union-attr]
    assert any("this run has no images" in e for e in errors)


def test_data_url_round_trip_of_raw_base64() -> None:
    raw = _png(_picture())
    url = "data:image/png;base64," + base64.b64encode(raw).decode()
    assert to_data_url(url) == url
