"""Continuous batching: requests join the rows decoding at the next token, and rows go back as they end."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from nano_support import loud_tiny_model  # noqa: E402

from parlswarm.models.local import LocalModel  # noqa: E402
from parlswarm.models.local_settings import LocalSettings, Sampling  # noqa: E402
from parlswarm.types import UserMessage  # noqa: E402


@pytest.fixture(scope="module")
def tiny() -> tuple[object, object]:
    return loud_tiny_model(weights_seed=5)


def _lm(tiny: tuple[object, object], continuous: bool, max_batch_size: int = 64, **sampling: object) -> LocalModel:
    model, tok = tiny
    settings = LocalSettings(sampling=Sampling(**{"max_new_tokens": 16, **sampling}))  # type: ignore[arg-type]
    lm = LocalModel(model, tok, settings=settings, continuous=continuous, max_batch_size=max_batch_size)
    lm.stop_ids = set()  # the random model has no end token to speak of: rows run to their budget
    return lm


def _ids(start: int, length: int) -> list[int]:
    return [10 + (start + 7 * i) % 250 for i in range(length)]


async def _staggered(lm: LocalModel, prompts: list[list[int]]) -> list[list[int]]:
    """Each prompt sent a little after the one before, so that most join rows already decoding."""
    async def one(i: int, p: list[int]) -> list[int]:
        await asyncio.sleep(0.002 * i)
        return (await lm.generate_ids(p)).output_ids

    return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts))))


async def test_rows_that_join_and_leave_decode_as_each_prompt_alone(tiny: tuple[object, object]) -> None:
    prompts = [_ids(i, 5 + 9 * i) for i in range(8)]
    alone = _lm(tiny, continuous=False, max_batch_size=1)
    free = [(await alone.generate_ids(p)).output_ids for p in prompts]
    # The token these replies write most often stops them: rows end at different lengths.
    alone.stop_ids = {Counter(t for o in free for t in set(o)).most_common(1)[0][0]}
    theirs = [(await alone.generate_ids(p)).output_ids for p in prompts]
    continuous = _lm(tiny, continuous=True)
    continuous.stop_ids = alone.stop_ids
    ours = await _staggered(continuous, prompts)
    assert ours == theirs
    assert len({len(o) for o in ours}) > 2  # rows of different lengths: some ended while others went on
    assert continuous.stats.requests == 8 and continuous.stats.batches > 1  # several admissions into one run
    assert continuous.stats.generated_tokens == sum(len(o) for o in ours)


async def test_a_short_request_returns_while_a_long_one_still_decodes(tiny: tuple[object, object]) -> None:
    async def order(lm: LocalModel) -> list[str]:
        lm.max_context = 400
        done: list[str] = []

        async def request(name: str, prompt: list[int], delay: float) -> None:
            await asyncio.sleep(delay)
            await lm.generate_ids(prompt)
            done.append(name)

        # The long one may generate 16 tokens; the short one's prompt leaves room for 2.
        await asyncio.gather(request("long", _ids(0, 20), 0), request("short", _ids(3, 398), 0.01))
        return done

    assert await order(_lm(tiny, continuous=True, max_new_tokens=200)) == ["short", "long"]
    assert await order(_lm(tiny, continuous=False, max_new_tokens=200)) == ["long", "short"]


def test_seeded_sampling_repeats_in_continuous_batches(tiny: tuple[object, object]) -> None:
    def sample() -> list[str]:
        lm = _lm(tiny, continuous=True, temperature=1.0, top_p=0.9, seed=7)

        async def go() -> list[str]:
            replies = await asyncio.gather(*(lm.complete([UserMessage(content=f"q{i} " * (i + 1))], []) for i in range(4)))
            return [r.message.content or "" for r in replies]

        return asyncio.run(go())

    assert sample() == sample()


async def test_seeded_draws_depend_on_the_prompt_not_on_the_batch(tiny: tuple[object, object]) -> None:
    prompts = [_ids(i, 6 + 5 * i) for i in range(4)]
    sampled = {"temperature": 1.0, "seed": 11}
    alone = [(await _lm(tiny, continuous=False, max_batch_size=1, **sampled).generate_ids(p)).output_ids for p in prompts]
    lockstep_lm = _lm(tiny, continuous=False, **sampled)
    together = [g.output_ids for g in await asyncio.gather(*(lockstep_lm.generate_ids(p) for p in prompts))]
    staggered = await _staggered(_lm(tiny, continuous=True, **sampled), list(reversed(prompts)))
    assert together == alone
    assert list(reversed(staggered)) == alone
    greedy = [(await _lm(tiny, continuous=False).generate_ids(p)).output_ids for p in prompts]
    assert alone != greedy  # it did sample

    # The same prompt twice in a round draws twice; a new round draws anew; a round repeats.
    lm = _lm(tiny, continuous=True, **sampled)
    first, second = await asyncio.gather(lm.generate_ids(prompts[0]), lm.generate_ids(prompts[0]))
    assert first.output_ids == alone[0] and second.output_ids != first.output_ids
    lm.start_sampling_round(1)
    assert (await lm.generate_ids(prompts[0])).output_ids not in (first.output_ids, second.output_ids)
    lm.start_sampling_round(0)
    assert (await lm.generate_ids(prompts[0])).output_ids == alone[0]

    # A round that outgrows its prompt table goes on in a fresh part: the table stays bounded and
    # a prompt drawn again after the turnover does not repeat its first draw.
    lm.round_prompt_cap = 2
    lm.start_sampling_round(0)
    assert [(await lm.generate_ids(p)).output_ids for p in prompts[:2]] == alone[:2]
    await lm.generate_ids(prompts[2])
    assert len(lm._prompts_drawn) == 1
    assert (await lm.generate_ids(prompts[0])).output_ids != alone[0]


async def test_continuous_rows_reuse_kept_prefixes(tiny: tuple[object, object]) -> None:
    reusing = _lm(tiny, continuous=True)
    first = [_ids(0, 40), _ids(5, 30)]
    await asyncio.gather(*(reusing.generate_ids(p) for p in first))
    second = [_ids(0, 40) + _ids(9, 12), _ids(5, 30) + _ids(2, 6), _ids(77, 20)]
    ours = await _staggered(reusing, second)
    alone = _lm(tiny, continuous=False, max_batch_size=1)
    alone.prefix_cache.max_bytes = 0
    assert ours == [(await alone.generate_ids(p)).output_ids for p in second]
    assert reusing.stats.reused_tokens >= 39 + 29


async def test_a_cancelled_caller_stops_its_row_and_the_others_go_on(tiny: tuple[object, object]) -> None:
    lm = _lm(tiny, continuous=True, max_new_tokens=60)
    doomed = asyncio.ensure_future(lm.generate_ids(_ids(1, 10)))
    kept = asyncio.ensure_future(lm.generate_ids(_ids(2, 12)))
    await asyncio.sleep(0.01)
    doomed.cancel()
    result = await kept
    assert len(result.output_ids) == 60 and doomed.cancelled()
    assert lm.stats.generated_tokens < 120  # the cancelled row stopped early
