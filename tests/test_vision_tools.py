"""The vision tool set inside a run, and key frames of recordings."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from PIL import Image

from parlswarm import Agent
from parlswarm.models import ScriptedModel, tool_reply
from parlswarm.toolsets import load_toolsets
from parlswarm.types import ImagePart, Message, ToolMessage
from parlswarm.vision.browser import Browser, shared_browser
from parlswarm.vision.frames import key_frames
from parlswarm.vision.images import to_pil

PAGE = "<html><body style='margin:0;background:#fff'><div style='width:120px;height:60px;background:#0a6'></div></body></html>"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    yield shared_browser()


async def test_render_crop_and_compare_inside_a_run(browser: Browser) -> None:
    seen: list[Sequence[Message]] = []

    def policy(messages: Sequence[Message]) -> object:
        seen.append(messages)
        turn = sum(1 for m in messages if m.role == "assistant")
        script = [
            tool_reply("render_html", {"html": PAGE, "width": 320, "height": 200}),
            tool_reply("crop_image", {"image": "render-1", "box": [0, 0, 160, 100]}),
            tool_reply("compare_images", {"reference": "render-1", "candidate": "render-1"}),
            tool_reply("crop_image", {"image": "nowhere", "box": [0, 0, 1, 1]}),
            "done",
        ]
        return script[turn]

    agent = Agent("looker", ScriptedModel(policy), tools=load_toolsets("vision"))
    result = await agent.run("look")
    assert result.content == "done" and result.tool_calls == 4
    tool_messages = [m for m in seen[-1] if isinstance(m, ToolMessage)]
    render, crop, compare, bad = tool_messages
    assert isinstance(render.content, list) and render.content[0].text.startswith("Rendered as image 'render-1' (320x200")  # type: ignore[union-attr]
    shot = to_pil(render.content[1])  # type: ignore[arg-type]
    assert shot.size == (320, 200) and shot.getpixel((10, 10)) == (0, 170, 102) and shot.getpixel((300, 150)) == (255, 255, 255)
    assert isinstance(crop.content, list) and to_pil(crop.content[1]).size == (160, 100)  # type: ignore[arg-type]
    assert isinstance(compare.content, list)
    assert "overall 1.000" in compare.content[0].text  # type: ignore[union-attr]
    assert isinstance(compare.content[1], ImagePart)
    assert isinstance(bad.content, str) and "no image named 'nowhere'" in bad.content


def test_vision_is_a_named_tool_set() -> None:
    assert load_toolsets("vision").names() == ["render_html", "crop_image", "compare_images"]


def _gif(path: Path, colours: list[str]) -> Path:
    frames = [Image.new("RGB", (64, 48), c) for c in colours]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def test_key_frames_keep_what_changes(tmp_path: Path) -> None:
    gif = _gif(tmp_path / "rec.gif", ["white", "white", "red", "red", "red", "blue", "blue"])
    frames = key_frames(gif)
    assert [f.getpixel((5, 5)) for f in frames] == [(255, 255, 255), (255, 0, 0), (0, 0, 255)]
    two = key_frames(gif, max_frames=2)
    assert [f.getpixel((5, 5)) for f in two] == [(255, 255, 255), (0, 0, 255)]  # first and last kept
    still = tmp_path / "still.png"
    Image.new("RGB", (8, 8), "green").save(still)
    assert len(key_frames(still)) == 1


def test_unreadable_recordings_raise_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="recording not found"):
        key_frames(tmp_path / "missing.mp4")
    fake = tmp_path / "clip.mp4"
    fake.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    with pytest.raises(ValueError, match=r"cannot read (video )?.*clip\.mp4"):
        key_frames(fake)

