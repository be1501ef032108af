"""The log a PARL step's policy turns are replayed from: packing, reading back, refusing a run
that has gone elsewhere. The replay through the trainer is tested in test_parl_train.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from parlswarm.parl.replay import (  # noqa: E402
    EpisodeReplay,
    ReplayMismatch,
    Turn,
    logged_generations,
    pack_ids,
    prompt_digest,
    replays_for,
    unpack_ids,
)


def test_token_ids_pack_into_text_and_back() -> None:
    ids = [0, 1, 2, 49151, 2**31 + 5, *range(1000, 3000)]
    text = pack_ids(ids)
    assert isinstance(text, str) and json.loads(json.dumps(text)) == text
    assert unpack_ids(text) == ids
    assert unpack_ids(pack_ids([])) == []


def line(step: int, episode: int, outputs: list[list[int]]) -> dict[str, object]:
    return {"step": step, "episode": episode,
            "turns": [{"prompt": prompt_digest([step, episode, i]), "prompt_tokens": 3, "output": pack_ids(o)}
                      for i, o in enumerate(outputs)]}


def test_the_latest_cut_of_a_step_counts_and_a_step_with_a_gap_is_left_out(tmp_path: Path) -> None:
    lines = [line(2, 0, [[9]]), line(2, 1, [[9]]),  # the first run's step 2
             line(2, 0, [[1], [2, 3]]), line(2, 1, [[4]]),  # cut again: these count
             line(3, 0, [[5]]), line(3, 2, [[6]])]  # step 3 lacks its second episode
    (tmp_path / "generations.dropped.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    logged = logged_generations(tmp_path, [2, 3])
    assert list(logged) == [2]
    assert [[t.output_ids for t in turns] for turns in logged[2]] == [[[1], [2, 3]], [[4]]]
    assert logged_generations(tmp_path, [4]) == {}
    assert logged_generations(tmp_path / "nowhere", [2]) == {}
    assert replays_for(2, logged[2], episodes=2) is not None
    assert replays_for(2, logged[2], episodes=4) is None  # the step ran another number of episodes


def test_a_replay_hands_out_its_turns_in_order_and_refuses_another_prompt() -> None:
    replay = EpisodeReplay(5, 1, [Turn(prompt_digest([1, 2]), [7, 8]), Turn(prompt_digest([1, 2, 7, 8, 3]), [9])])
    assert replay.output_of([1, 2]) == [7, 8]
    with pytest.raises(ReplayMismatch, match=r"step 5, episode 2, policy turn 2: the prompt \(4 tokens\) is not the one logged"):
        replay.output_of([1, 2, 7, 8])
    assert replay.output_of([1, 2, 7, 8, 3]) == [9]
    with pytest.raises(ReplayMismatch, match="policy turn 3: the log holds 2 turns"):
        replay.output_of([1])
    assert replay.used == 2
