"""The auxiliary comparing task: synthetic matched verdict lines, their targets, the config's check, the training loop."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch  # noqa: E402

from parlswarm.parl.compare_task import CompareTaskConfig, compare_batch, compare_sampler, random_draw  # noqa: E402
from parlswarm.parl.copy_task import copy_loss  # noqa: E402
from parlswarm.parl.sft import SFTRun  # noqa: E402
from parlswarm.parl.sft_config import SFTConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(
    r"^(.+) \((\w+)\): (.+) = (-?[\d.]+) vs (-?[\d.]+): (above|below|equal), wanted (above|below|equal): (kept|left out)$"
)


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    from parlswarm.models.local import LocalModel
    from parlswarm.models.local_specs import BUILTIN_DIR

    return LocalModel.from_pretrained(BUILTIN_DIR).tokenizer


def test_verdict_lines_are_right_and_only_the_deciding_tokens_are_targets(tokenizer) -> None:  # type: ignore[no-untyped-def]
    cfg = CompareTaskConfig(weight=1.0, batch=24, lines=6)
    ids, target = compare_sampler(tokenizer, cfg)(3, 5)
    assert ids.shape == target.shape and ids.shape[0] == 24
    seen = {"kept": 0, "left out": 0, "shared": 0, "negative": 0}
    for row, mask in zip(ids.tolist(), target.tolist()):
        text = tokenizer.decode(row)
        lines = [line for line in text.split("\n") if line]
        assert len(lines) == 6
        decided = [tokenizer.decode([t]).strip() for t, m in zip(row, mask) if m]
        assert len(decided) == 12  # one relation and one verdict a line
        for n, line in enumerate(lines):
            match = LINE.match(line)
            assert match, line
            value, threshold, relation, wanted, verdict = match.group(4, 5, 6, 7, 8)
            assert len(value.lstrip("-")) == len(threshold.lstrip("-"))  # written digit under digit
            a, b = float(value), float(threshold)
            assert relation == ("above" if a > b else "below" if a < b else "equal"), line
            assert verdict == ("kept" if relation == wanted else "left out"), line
            assert relation.startswith(decided[2 * n]) and verdict.startswith(decided[2 * n + 1])
            seen[verdict] += 1
            seen["shared"] += a != b and value.lstrip("-0")[:1] == threshold.lstrip("-0")[:1]
            seen["negative"] += value.startswith("-") or threshold.startswith("-")
    assert min(seen.values()) > 3, seen  # both verdicts, close numbers and negative ones all occur
    again, _ = compare_sampler(tokenizer, cfg)(3, 5)
    assert torch.equal(again, ids)  # a resumed run draws the same
    assert not torch.equal(compare_sampler(tokenizer, cfg)(4, 5)[0][:, :20], ids[:, :20])


def test_compare_loss_names_its_metrics_and_reaches_the_weights(tokenizer) -> None:  # type: ignore[no-untyped-def]
    from parlswarm.models.local import LocalModel
    from parlswarm.models.local_specs import BUILTIN_DIR

    model = LocalModel.from_pretrained(BUILTIN_DIR).model.float()
    names, labels = [("Palau", "ps")], ["Coastline (km)"]
    cfg = CompareTaskConfig(weight=1.0, batch=2, lines=2)
    ids, target = compare_batch(cfg, tokenizer, random_draw(cfg, names, labels), 0, 0)
    loss, metrics = copy_loss(model, ids, target, name="compare")
    loss.backward()
    assert set(metrics) == {"compare_loss", "compare_acc"} and 0 <= metrics["compare_acc"] <= 1
    assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.parameters())


def test_compare_task_needs_notes_that_compare() -> None:
    cfg = SFTConfig.load(ROOT / "configs" / "sft-nano-verdicts.yaml")
    assert cfg.train.compare_task.weight > 0 and cfg.data.note_style == "matched"
    raw = cfg.model_dump()
    raw["data"]["note_style"] = "compared"
    SFTConfig.model_validate(raw)  # its lines without the wanted relation
    raw["data"]["note_style"] = "verbatim"
    with pytest.raises(ValueError, match="train.compare_task writes the comparison lines .*data.note_style is 'verbatim'"):
        SFTConfig.model_validate(raw)


def test_world_numbers_compare_a_place_with_a_threshold_a_task_could_set(tokenizer) -> None:  # type: ignore[no-untyped-def]
    from parlswarm.world.factbook import Factbook
    from parlswarm.world.fields import FIELDS
    from parlswarm.world.tasks import filter_values

    cfg = CompareTaskConfig(weight=1.0, batch=16, lines=4, numbers="world", worlds=1)
    with pytest.raises(ValueError, match="numbers: world needs data.world_seeds"):
        compare_sampler(tokenizer, cfg, "compared", [])
    ids, target = compare_sampler(tokenizer, cfg, "compared", [7])(0, 1)
    real = Factbook.load()
    by_label = {f.label: f for f in FIELDS if f.type == "number"}
    compared = re.compile(r"^(.+) \((\w+)\): (.+) = (-?[\d.]+) vs (-?[\d.]+): (above|below|equal): (kept|left out)$")
    near = 0
    for row, mask in zip(ids.tolist(), target.tolist()):
        lines = [line for line in tokenizer.decode(row).split("\n") if line]
        decided = [tokenizer.decode([t]).strip() for t, m in zip(row, mask) if m]
        assert len(lines) == 4 and len(decided) == 4  # compared notes: the relation only is a target
        for line, first in zip(lines, decided):
            match = compared.match(line)
            assert match, line
            code, label, value, threshold, relation = match.group(2, 3, 4, 5, 6)
            a, b = float(value), float(threshold)
            assert relation == ("above" if a > b else "below" if a < b else "equal") and relation.startswith(first)
            # The threshold lies in the middle of the place's region's real values, as a task's does.
            values = filter_values(real.members(real.entities[code].region), by_label[label])
            assert values[int(0.25 * len(values))] * 0.5 <= b <= values[int(0.75 * len(values))] * 1.5 or b == 0, line
            near += max(a, b) < 2 * min(a, b)
    assert near > 16  # most comparisons are of close numbers, unlike random ones


@pytest.mark.parametrize(("style", "numbers"), [("matched", "random"), ("compared", "world")])
def test_tiny_sft_trains_the_compare_task_every_step(tmp_path: Path, style: str, numbers: str) -> None:
    cfg = SFTConfig.load(ROOT / "configs" / "sft-tiny.yaml")
    cfg.out_dir = tmp_path / "sft"
    cfg.tokenizer_pages = 150
    cfg.data = cfg.data.model_copy(
        update={"reader": "find", "note_style": style, "orchestrator_samples": 6, "subagent_samples": 6, "dev_samples": 2}
    )
    cfg.train = cfg.train.model_copy(
        update={
            "steps": 3,
            "eval_every": 3,
            "save_every": 3,
            "compare_task": CompareTaskConfig(weight=1.0, batch=2, lines=2, numbers=numbers, worlds=1),
        }
    )
    SFTRun(SFTConfig.model_validate(cfg.model_dump())).run()
    records = [json.loads(line) for line in (cfg.out_dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(r["compare_loss"] > 0 and 0 <= r["compare_acc"] <= 1 for r in records)
