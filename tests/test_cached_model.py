"""The reply memo for frozen sub-agents: same conversation, same reply, no second decode."""

from __future__ import annotations

from pathlib import Path

from parlswarm.models.cached import CachedModel
from parlswarm.models.scripted import ScriptedModel
from parlswarm.types import SystemMessage, UserMessage


class Counting(ScriptedModel):
    def __init__(self) -> None:
        super().__init__(lambda messages: f"reply to {messages[-1].content}", name="counting")
        self.calls = 0

    async def complete(self, messages, tools):  # noqa: ANN001
        self.calls += 1
        return await super().complete(messages, tools)


async def test_cache_hits_skip_the_model_and_persist(tmp_path: Path) -> None:
    inner = Counting()
    db = tmp_path / "cache.sqlite"
    cached = CachedModel(inner, namespace="ckpt-1/world-3", path=db)
    conv = [SystemMessage(content="s"), UserMessage(content="France")]
    first = await cached.complete(conv, [])
    second = await cached.complete(conv, [])
    assert first == second and inner.calls == 1 and (cached.hits, cached.misses) == (1, 1)
    await cached.complete([SystemMessage(content="s"), UserMessage(content="Peru")], [])
    assert inner.calls == 2
    cached.close()
    # A new process (a new wrapper) finds the replies on disk; another namespace does not.
    again = CachedModel(Counting(), namespace="ckpt-1/world-3", path=db)
    assert (await again.complete(conv, [])).message.content == "reply to France"
    assert again.inner.calls == 0  # type: ignore[attr-defined]
    other = CachedModel(Counting(), namespace="ckpt-2/world-3", path=db)
    await other.complete(conv, [])
    assert other.inner.calls == 1  # type: ignore[attr-defined]
