"""Config files of every kind fail with one line naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from parlswarm.bench import BenchConfig
from parlswarm.parl.parl_config import ParlConfig, same_run

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_shipped_configs_load() -> None:
    assert ParlConfig.from_yaml(CONFIGS / "parl-nano.yaml").budgets.max_critical_steps == 12
    assert BenchConfig.from_yaml(CONFIGS / "bench-parl.yaml").budgets_for(6).max_critical_steps == 12
    assert BenchConfig.from_yaml(CONFIGS / "bench-report.yaml").budgets_for(50).max_subagent_steps == 100
    # bench-parl-smollm2.yaml is the budget the SmolLM2 PARL runs train and are evaluated under.
    smollm2 = ParlConfig.from_yaml(CONFIGS / "parl-smollm2.yaml")
    assert BenchConfig.from_yaml(CONFIGS / "bench-parl-smollm2.yaml").budgets_for(smollm2.max_rows or 8) == smollm2.budgets
    # parl-smollm2-t08.yaml is the grid of stops 24-26: parl-smollm2.yaml and that command's overrides.
    grid = ParlConfig.from_yaml(CONFIGS / "parl-smollm2-t08.yaml")
    as_run = ParlConfig.from_yaml(CONFIGS / "parl-smollm2.yaml", {"policy": grid.policy, "prefix_notes": "verbatim", "temperature": 0.8})
    assert same_run(grid, as_run)  # the same run, kept elsewhere and (since stop 29) decoded with continuous batching
    assert grid.continuous_batching and not as_run.continuous_batching


def test_every_shipped_config_loads() -> None:
    parl = sorted(CONFIGS.glob("parl-*.yaml"))
    bench = sorted(CONFIGS.glob("bench-*.yaml"))
    assert len(parl) >= 2 and len(bench) >= 2
    for path in parl:
        ParlConfig.from_yaml(path)
    for path in bench:
        BenchConfig.from_yaml(path)
    assert ParlConfig.from_yaml(CONFIGS / "parl-nano-find.yaml").subagent == "expert:find"
    pytest.importorskip("torch")
    from parlswarm.parl.sft_config import SFTConfig

    sft = {p.name: SFTConfig.load(p) for p in sorted(CONFIGS.glob("sft-*.yaml"))}
    assert sft["sft-nano-find.yaml"].data.reader == "find" and sft["sft-nano-find.yaml"].train.copy_task.weight > 0


def test_bad_config_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="PARL config not found: .*nope.yaml"):
        ParlConfig.from_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: -3\ngroup_size: one\nreward: {form: poem}\n")
    with pytest.raises(ValueError) as info:
        ParlConfig.from_yaml(bad)
    message = str(info.value)
    assert message.startswith(f"PARL config {bad}: ")
    assert "steps: Input should be greater than or equal to 1" in message
    assert "group_size: Input should be a valid integer" in message
    assert "reward.form: Input should be 'report' or 'blog'" in message
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="must be a mapping of settings, not list"):
        BenchConfig.from_yaml(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("tiers: [\n")
    with pytest.raises(ValueError, match="bench config .*broken.yaml is not valid YAML"):
        BenchConfig.from_yaml(tmp_path / "broken.yaml")


def test_a_config_extends_another_key_by_key(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(
        "policy: builtin\nworld_seeds: [1, 2, 3]\nsteps: 10\nbudgets: {max_critical_steps: 12, max_subagents: 5}\n"
    )
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nworld_seeds: [4]\nbudgets: {max_critical_steps: 8}\n")
    child = ParlConfig.from_yaml(tmp_path / "child.yaml", {"steps": 3})
    assert child.world_seeds == [4]  # a list is replaced whole
    assert child.budgets.max_critical_steps == 8 and child.budgets.max_subagents == 5  # a mapping key by key
    assert child.policy == "builtin" and child.steps == 3  # kept from the base; overrides still last
    # A chain: the grandchild sees both files beneath it, from a folder of its own.
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "grandchild.yaml").write_text("extends: ../child.yaml\nsteps: 7\n")
    grandchild = ParlConfig.from_yaml(tmp_path / "more" / "grandchild.yaml")
    assert (grandchild.steps, grandchild.world_seeds, grandchild.budgets.max_subagents) == (7, [4], 5)


def test_a_bad_extends_is_named(tmp_path: Path) -> None:
    (tmp_path / "orphan.yaml").write_text("extends: gone.yaml\n")
    with pytest.raises(FileNotFoundError, match=r"PARL config not found: .*gone.yaml \(extended by .*orphan.yaml\)"):
        ParlConfig.from_yaml(tmp_path / "orphan.yaml")
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ValueError, match=r"comes back to a file it started from: .*a.yaml -> .*b.yaml -> .*a.yaml"):
        ParlConfig.from_yaml(tmp_path / "a.yaml")
    (tmp_path / "two.yaml").write_text("extends: [a.yaml, b.yaml]\n")
    with pytest.raises(ValueError, match="extends must name one config file"):
        BenchConfig.from_yaml(tmp_path / "two.yaml")
    (tmp_path / "wrong.yaml").write_text("extends: base.yaml\nsteps: many\n")
    (tmp_path / "base.yaml").write_text("policy: builtin\n")
    with pytest.raises(ValueError, match=r"PARL config .*wrong.yaml: steps: Input should be a valid integer"):
        ParlConfig.from_yaml(tmp_path / "wrong.yaml")


def test_shipped_configs_that_extend_differ_only_where_they_say() -> None:
    nano, find = ParlConfig.from_yaml(CONFIGS / "parl-nano.yaml"), ParlConfig.from_yaml(CONFIGS / "parl-nano-find.yaml")
    assert (find.subagent, find.budgets.max_critical_steps, nano.budgets.max_critical_steps) == ("expert:find", 8, 12)
    assert (find.reward, find.world_seeds, find.steps) == (nano.reward, nano.world_seeds, nano.steps)
    pytest.importorskip("torch")
    from parlswarm.parl.sft_config import SFTConfig

    long2, deep = SFTConfig.load(CONFIGS / "sft-nano-long-2.yaml"), SFTConfig.load(CONFIGS / "sft-nano-deep.yaml")
    assert deep.deepen_to == 6 and long2.deepen_to is None
    same = ("init", "data", "settings")
    assert all(getattr(deep, key) == getattr(long2, key) for key in same) and deep.train.steps == long2.train.steps
    answers = SFTConfig.load(CONFIGS / "sft-nano-answers.yaml")
    assert (answers.data.answer_samples, answers.data.max_tokens, answers.data.note_style) == (800, 4096, "verbatim")
    assert not set(answers.data.world_seeds) & set(long2.data.world_seeds)
