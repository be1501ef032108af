"""Prefix reuse: a prompt that starts with tokens already decoded prefills only the rest."""

from __future__ import annotations

import asyncio
import copy

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from nano_support import loud_tiny_model  # noqa: E402

from parlswarm.models.local import LocalModel  # noqa: E402
from parlswarm.models.local_settings import LocalSettings, Sampling  # noqa: E402
from parlswarm.models.prefix_cache import PrefixCache, common_prefix  # noqa: E402
from parlswarm.types import AssistantMessage, ToolCall, ToolMessage, UserMessage  # noqa: E402


@pytest.fixture(scope="module")
def tiny() -> tuple[object, object]:
    return loud_tiny_model(weights_seed=3)


def _lm(tiny: tuple[object, object], cache_bytes: int = 2**24, model: object = None) -> LocalModel:
    base, tok = tiny
    settings = LocalSettings(sampling=Sampling(max_new_tokens=10))
    lm = LocalModel(model or base, tok, settings=settings, prefix_cache_bytes=cache_bytes)
    lm.stop_ids = set()  # always 10 tokens: longer replies, more positions to get wrong
    return lm


def _ids(start: int, length: int) -> list[int]:
    return [10 + (start + 7 * i) % 250 for i in range(length)]


def test_common_prefix_and_match_leave_the_last_prompt_token_to_compute() -> None:
    assert common_prefix(torch.tensor([1, 2, 3]), torch.tensor([1, 2, 4, 5])) == 2
    assert common_prefix(torch.tensor([1, 2]), torch.tensor([1, 2, 3])) == 2
    assert common_prefix(torch.tensor([], dtype=torch.long), torch.tensor([1])) == 0
    cache = PrefixCache(10**6)
    kv = [(torch.zeros(2, 5, 4), torch.zeros(2, 5, 4))]
    cache.add([1, 2, 3, 4, 5], kv)
    entry, reuse = cache.match([1, 2, 3, 4, 5])
    assert entry is not None and reuse == 4  # the same prompt again: its last token is still computed
    assert cache.match([9, 9])[1] == 0
    assert cache.match([1, 2, 7])[1] == 2


def test_entries_are_evicted_oldest_first_within_the_byte_budget() -> None:
    def kv(tokens: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(torch.zeros(1, tokens, 1), torch.zeros(1, tokens, 1))]  # 8 bytes a token

    cache = PrefixCache(100)
    cache.add([1] * 5, kv(5))
    cache.add([2] * 5, kv(5))
    assert len(cache) == 2 and cache.nbytes == 80
    cache.match([1, 1, 1])  # entry [1]*5 is now the most recently used
    cache.add([3] * 3, kv(3))
    assert len(cache) == 2 and cache.nbytes == 64
    assert cache.match([2, 2, 2])[1] == 0 and cache.match([1, 1, 1])[1] == 2
    cache.add([4] * 20, kv(20))  # over the whole budget: not kept
    assert len(cache) == 2
    with pytest.raises(ValueError, match="at least 0 bytes"):
        PrefixCache(-1)


async def test_an_agents_next_turn_reuses_its_last_prompt_and_decodes_the_same(tiny: tuple[object, object]) -> None:
    reusing, fresh = _lm(tiny), _lm(tiny, cache_bytes=0)
    messages: list = [UserMessage(content="Chad capital? " * 6)]
    lengths = []
    for turn in range(3):
        a, b = await reusing.complete(messages, []), await fresh.complete(messages, [])
        assert a.message == b.message
        lengths.append(a.usage.prompt_tokens)
        call = ToolCall.make(f"c{turn}", "search", {"query": f"Chad {turn}"})
        messages += [AssistantMessage(content=a.message.content, tool_calls=[call]),
                     ToolMessage(tool_call_id=f"c{turn}", content=f"Chad: capital N'Djamena {turn}")]
    assert fresh.stats.reused_tokens == 0 and len(fresh.prefix_cache) == 0
    # Turns 2 and 3 reuse the prompt before them (a token or two at the seams may be spelt anew).
    assert reusing.stats.reused_tokens >= lengths[0] + lengths[1] - 4
    assert reusing.stats.prompt_tokens == fresh.stats.prompt_tokens == sum(lengths)


async def test_a_batch_of_rows_with_different_reused_prefixes_decodes_as_without_reuse(tiny: tuple[object, object]) -> None:
    reusing, fresh = _lm(tiny), _lm(tiny, cache_bytes=0)
    first = [_ids(0, 40), _ids(3, 12), _ids(5, 70)]
    for lm in (reusing, fresh):
        await asyncio.gather(*(lm.generate_ids(p) for p in first))
    # Row 0 reuses 40 tokens, row 1 a few, row 2 none (its tokens are new), row 3 all but one.
    second = [_ids(0, 40) + _ids(9, 25), _ids(3, 5) + _ids(1, 3), _ids(77, 30), _ids(5, 70)]
    ours = await asyncio.gather(*(reusing.generate_ids(p) for p in second))
    theirs = await asyncio.gather(*(fresh.generate_ids(p) for p in second))
    assert reusing.stats.largest_batch == 4
    assert [g.output_ids for g in ours] == [g.output_ids for g in theirs]
    assert len({tuple(g.output_ids) for g in ours}) == 4
    assert reusing.stats.reused_tokens >= 40 + 5 + 69


async def test_changed_weights_void_the_kept_prefixes(tiny: tuple[object, object]) -> None:
    model = copy.deepcopy(tiny[0])
    lm = _lm(tiny, model=model)
    prompt = _ids(0, 50)
    await lm.generate_ids(prompt)
    assert len(lm.prefix_cache) == 1
    # A PARL update between rollouts: an optimiser step changes the parameters in place.
    weight = next(model.parameters())
    weight.grad = torch.ones_like(weight)
    torch.optim.AdamW([weight], lr=0.5).step()
    after = await lm.generate_ids(prompt + _ids(2, 4))
    assert lm.stats.reused_tokens == 0
    alone = await _lm(tiny, cache_bytes=0, model=model).generate_ids(prompt + _ids(2, 4))
    assert after.output_ids == alone.output_ids
