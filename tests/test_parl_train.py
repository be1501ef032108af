"""PARL smoke test: two GRPO steps of a tiny policy through the real runtime and world.

A tiny random policy never solves a task, so every episode would score 0, every advantage
would be 0 and the update would do nothing. The test therefore stands in for the scorer
with one that grades the answer text (more distinct characters score higher): a signal the
policy can follow, so that the update really moves the weights. Rewards are computed by
the real reward code from that score; their arithmetic is tested in test_parl_rewards.py.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from safetensors.torch import load_file

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import parlswarm.parl.rollout as rollout  # noqa: E402
import parlswarm.parl.train as train_module  # noqa: E402
from parlswarm import prompts  # noqa: E402
from parlswarm.models.local import LocalModel  # noqa: E402
from parlswarm.models.local_settings import LocalSettings  # noqa: E402
from parlswarm.models.nano import NanoConfig, build_model, train_tokenizer, write_settings  # noqa: E402
from parlswarm.parl.grpo import Sample  # noqa: E402
from parlswarm.parl.parl_config import ParlConfig  # noqa: E402
from parlswarm.parl.replay import REPLAYED, difference, largest_difference, replay_differences  # noqa: E402
from parlswarm.parl.rewards import EpisodeStats, RewardConfig  # noqa: E402
from parlswarm.parl.run_folder import latest_checkpoint, logged_steps, prune_checkpoints, trim_log  # noqa: E402
from parlswarm.parl.train import Deadline, StepEvaluation, episode_record, step_fits, train, turn_tokens  # noqa: E402
from parlswarm.types import Budgets  # noqa: E402
from parlswarm.world.expert import ExpertModel  # noqa: E402
from parlswarm.world.factbook import Factbook  # noqa: E402
from parlswarm.world.tasks import make_tasks  # noqa: E402


@pytest.fixture
def answer_graded_score(monkeypatch: pytest.MonkeyPatch) -> None:
    real = rollout.score_response

    def graded(task, gold, response, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        score = real(task, gold, response, *args, **kwargs)
        return score.model_copy(update={"item_f1": min(1.0, len(set(response)) / 40)})

    monkeypatch.setattr(rollout, "score_response", graded)


@pytest.fixture(scope="module")
def tiny_warm_start(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ParlConfig]:
    folder = tmp_path_factory.mktemp("tiny-policy")
    tasks = make_tasks("train", Factbook.load())
    texts = [prompts.load("orchestrator"), prompts.load("subagent"), *(t.query for t in tasks[:30])]
    tokenizer = train_tokenizer(texts * 5, vocab_size=600)
    config = NanoConfig(vocab_size=600, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=8192)
    build_model(config, tokenizer, seed=0).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    write_settings(folder, LocalSettings(tool_format="compact"))
    parl = ParlConfig(
        policy=str(folder), subagent="same", world_seeds=[31], min_rows=1, max_rows=None, steps=2, tasks_per_step=1,
        group_size=4, lr=1e-2, max_new_tokens=24, minibatch=4, checkpoint_every=1, seed=3,
        budgets=Budgets(max_critical_steps=6, max_orchestrator_steps=2, max_subagent_steps=1, max_tool_calls=20),
        task_ids=[tasks[0].instance_id], out_dir=str(tmp_path_factory.mktemp("parl-run")),
    )
    return folder, parl


@pytest.mark.usefixtures("answer_graded_score")
def test_two_parl_steps_train_only_the_orchestrator(tiny_warm_start: tuple[Path, ParlConfig]) -> None:
    folder, config = tiny_warm_start
    before = {k: v.clone() for k, v in LocalModel.from_pretrained(folder).model.state_dict().items()}
    steps: list[dict[str, float]] = []
    out = train(config, on_step=lambda step, scalars: steps.append(scalars))
    assert len(steps) == 2

    # Every reward term and episode statistic is logged, per step and per episode.
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2]
    for key in ("episode/total", "episode/r_parallel", "episode/r_finish", "episode/r_perf", "episode/lambda1",
                "episode/lambda2", "episode/lambda_aux", "episode/subagents_assigned", "episode/critical_steps",
                "episode/parallel_share", "loss/loss", "loss/kl", "loss/clip_fraction"):
        assert key in metrics[0], key
    assert metrics[0]["episode/lambda1"] > metrics[1]["episode/lambda1"]  # annealing
    # Where a step's time went: rollout and update add up to the step; the turns' sizes.
    for m in metrics:
        assert m["train/rollout_seconds"] + m["train/update_seconds"] == pytest.approx(m["train/seconds"], abs=0.05)
        assert m["train/completion_tokens"] >= m["train/turns"] > 0
        assert m["train/longest_turn_tokens"] > m["train/prompt_tokens_mean"] > 0
        assert 0.0 <= m["train/reused_prompt_share"] < 1.0
    episodes = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) == 2 * 4
    assert len({e["r_perf"] for e in episodes[:4]}) > 1  # the group carries a signal
    assert (out / "tensorboard").is_dir() or not _has_tensorboard()

    # The orchestrator changed; the warm start the frozen sub-agents run did not.
    trained = LocalModel.from_pretrained(out / "checkpoints" / "step-00002").model.state_dict()
    assert any(not torch.equal(before[k], trained[k]) for k in before)
    warm = LocalModel.from_pretrained(folder).model.state_dict()
    assert all(torch.equal(before[k], warm[k]) for k in before)


@pytest.mark.usefixtures("answer_graded_score")
def test_parl_with_lora_trains_an_adapter_on_the_warm_start(tiny_warm_start: tuple[Path, ParlConfig]) -> None:
    from parlswarm.models.adapter import LoraSettings, has_adapter
    from parlswarm.models.local_specs import weights_digest

    folder, config = tiny_warm_start
    out = Path(config.out_dir).with_name(Path(config.out_dir).name + "-lora")
    lora = config.model_copy(update={"lora": LoraSettings(r=4, alpha=8), "out_dir": str(out), "lr": 5e-2})
    before = {k: v.clone() for k, v in LocalModel.from_pretrained(folder).model.state_dict().items()}
    train(lora)
    checkpoint = out / "checkpoints" / "step-00002"
    assert has_adapter(checkpoint) and not (checkpoint / "config.json").exists()
    saved = json.loads((checkpoint / "parlswarm.json").read_text())
    assert saved["base"] == str(folder) and saved["base_digest"] == weights_digest(str(folder))
    # Loaded, the checkpoint is the warm start with the adapter merged: its linear layers moved, nothing else.
    trained = LocalModel.from_pretrained(checkpoint).model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], trained[k])}
    assert changed and all(k.endswith("_proj.weight") for k in changed)
    warm = LocalModel.from_pretrained(folder).model.state_dict()
    assert all(torch.equal(before[k], warm[k]) for k in before)
    # The checkpoint says what made it, for a shipped model's manifest.
    manifest = json.loads((checkpoint / "manifest.json").read_text())
    assert manifest["config"]["policy"] == lora.policy and manifest["steps"] == 2
    assert manifest["train"]["step"] == 2 and "episode/total" in manifest["train"]
    assert manifest["init_digest"] == saved["base_digest"]
    assert manifest["git_commit"] == ((out / "git_commit").read_text().strip() or None)

    # Resuming on a warm start that holds other weights than the run recorded is refused, naming both.
    recorded = out / "warm_start" / "parlswarm.json"
    settings = json.loads(recorded.read_text())
    recorded.write_text(json.dumps(settings | {"base_digest": "0" * 64}))
    with pytest.raises(ValueError, match=r"sha256 000000000000; .* now holds other weights"):
        train(lora)
    # Without checkpoints (a record kept in git, say) the run starts over and records the warm start afresh.
    shutil.rmtree(out / "checkpoints")
    train(lora)
    assert json.loads(recorded.read_text())["base_digest"] == weights_digest(str(folder))
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def _has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.usefixtures("answer_graded_score")
def test_resume_continues_from_the_latest_checkpoint(tiny_warm_start: tuple[Path, ParlConfig]) -> None:
    _, config = tiny_warm_start
    out = Path(config.out_dir).with_name(Path(config.out_dir).name + "-resume")
    first = config.model_copy(update={"steps": 1, "out_dir": str(out)})
    train(first)
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-00001"
    resumed = first.model_copy(update={"steps": 2})
    with pytest.raises(ValueError, match=r"another config \(steps: 1 → 2\)"):
        train(resumed)  # steps is part of the schedule: a longer run is a new run
    train(first)  # the same config again finds its last checkpoint and has nothing left to do
    # A run begun before an option existed resumes: the option counts at its default.
    saved = yaml.safe_load((out / "config.yaml").read_text())
    del saved["gradient_checkpointing"]
    (out / "config.yaml").write_text(yaml.safe_dump(saved))
    train(first)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1]
    # One start did a step; those that found nothing left to do are not recorded.
    starts = [json.loads(line) for line in (out / "starts.jsonl").read_text().splitlines()]
    assert [s["from_step"] for s in starts] == [0] and starts[0]["replay_tolerance"] == 0.0
    assert starts[0]["machine"]["torch_cpu_capability"] and starts[0]["machine"]["cpus"] >= 1
    assert "git_changes" in starts[0]  # the tree's uncommitted files beside the commit (None outside git)

    # Steps logged after the last checkpoint (killed before saving it) are cut and run again.
    episodes = (out / "episodes.jsonl").read_text()
    with (out / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": 2, "episode/total": 9.0}) + "\n")
    with (out / "episodes.jsonl").open("a") as f:
        f.write(json.dumps({"step": 2, "total": 9.0}) + "\n")
    assert trim_log(out, 1) == [2]
    assert (out / "metrics.jsonl").read_text().splitlines() == lines and (out / "episodes.jsonl").read_text() == episodes
    assert logged_steps(out) == 1
    # The cut lines are kept aside, not lost: a step run again can be set beside its first run.
    assert [json.loads(line) for line in (out / "metrics.dropped.jsonl").read_text().splitlines()] == [
        {"step": 2, "episode/total": 9.0}]
    assert (out / "episodes.dropped.jsonl").read_text() == json.dumps({"step": 2, "total": 9.0}) + "\n"
    assert not (out / "eval.dropped.jsonl").exists() and trim_log(out, 1) == []

    # keep_checkpoints: a two-step run keeping one ends with its last checkpoint alone.
    kept = config.model_copy(update={"out_dir": str(out) + "-keep", "keep_checkpoints": 1})
    train(kept)
    assert [p.name for p in (Path(kept.out_dir) / "checkpoints").glob("step-*")] == ["step-00002"]


def test_a_step_fits_before_the_deadline_by_the_runs_longest_step_or_its_own_update(tmp_path: Path) -> None:
    assert step_fits(tmp_path, deadline=Deadline(100.0), now=100.0)  # nothing logged: a step starts while time is left
    assert not step_fits(tmp_path, deadline=Deadline(100.0), now=100.5)
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({"step": i + 1, "train/seconds": t}) + "\n" for i, t in
                                                    enumerate([30.0, 50.0, 20.0])))
    assert step_fits(tmp_path, deadline=Deadline(100.0), now=50.0)
    assert not step_fits(tmp_path, deadline=Deadline(100.0), now=50.5)
    # A run started over: its first start's steps count, a replayed step (no decoding) does not.
    (tmp_path / "metrics.dropped.jsonl").write_text(json.dumps({"step": 1, "train/seconds": 70.0}) + "\n")
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": 4, "train/seconds": 90.0, REPLAYED: 1.0}) + "\n")
    assert step_fits(tmp_path, deadline=Deadline(100.0), now=30.0)
    assert not step_fits(tmp_path, deadline=Deadline(100.0), now=30.5)
    # A step about to be replayed: its own longest logged update (25 s, in either start) and
    # the longest replayed step's rollout (4 s), not the longest decoded step (70 s).
    with (tmp_path / "metrics.dropped.jsonl").open("a") as f:
        for line in ({"step": 2, "train/seconds": 45.0, "train/update_seconds": 25.0},
                     {"step": 2, "train/seconds": 30.0, "train/update_seconds": 10.0}):
            f.write(json.dumps(line) + "\n")
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": 5, "train/seconds": 9.0, "train/rollout_seconds": 4.0, REPLAYED: 1.0}) + "\n")
    assert step_fits(tmp_path, deadline=Deadline(100.0), now=71.0, replay=2)
    assert not step_fits(tmp_path, deadline=Deadline(100.0), now=71.5, replay=2)
    # A step with no update logged in any start is judged as a decoded one.
    assert step_fits(tmp_path, deadline=Deadline(100.0), now=30.0, replay=3)
    assert not step_fits(tmp_path, deadline=Deadline(100.0), now=30.5, replay=3)
    # A margin of 1.25 leaves 1.25 times the longest decoded step (70 s) for a step to be
    # decoded, and nothing more for one to be replayed (it repeats a known update).
    assert step_fits(tmp_path, deadline=Deadline(100.0, margin=1.25), now=12.5)
    assert not step_fits(tmp_path, deadline=Deadline(100.0, margin=1.25), now=13.0)
    assert step_fits(tmp_path, deadline=Deadline(100.0, margin=1.25), now=71.0, replay=2)
    with pytest.raises(ValueError, match="the deadline's margin is a number of at least 1 .* not 0.5"):
        Deadline(100.0, margin=0.5)


@pytest.mark.usefixtures("answer_graded_score")
def test_a_deadline_stops_a_run_with_a_checkpoint_it_resumes_from(tiny_warm_start: tuple[Path, ParlConfig],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _, config = tiny_warm_start
    out = Path(config.out_dir).with_name(Path(config.out_dir).name + "-deadline")
    # Checkpoints every 2 steps: stopped after step 1, the run saves one anyway, or step 1 would be lost.
    cfg = config.model_copy(update={"steps": 3, "checkpoint_every": 2, "out_dir": str(out)})
    fits = iter([True, False])
    monkeypatch.setattr(train_module, "step_fits", lambda folder, deadline, replay: next(fits))
    train(cfg, deadline=Deadline(0.0))
    assert logged_steps(out) == 1 and latest_checkpoint(out) == out / "checkpoints" / "step-00001"
    monkeypatch.setattr(train_module, "step_fits", lambda folder, deadline, replay: True)
    train(cfg, deadline=Deadline(0.0))
    assert logged_steps(out) == 3 and latest_checkpoint(out) == out / "checkpoints" / "step-00003"
    assert not (out / "metrics.dropped.jsonl").exists()  # nothing was logged past a checkpoint
    # Each start is on record with the machine it ran on: a resumed run may have moved.
    assert [json.loads(line)["from_step"] for line in (out / "starts.jsonl").read_text().splitlines()] == [0, 1]


@pytest.mark.usefixtures("answer_graded_score")
def test_a_resumed_run_samples_what_an_unbroken_one_did(tiny_warm_start: tuple[Path, ParlConfig]) -> None:
    _, config = tiny_warm_start
    unbroken = Path(config.out_dir).with_name(Path(config.out_dir).name + "-unbroken")
    train(config.model_copy(update={"out_dir": str(unbroken), "temperature": 1.5}))
    # The same run killed after step 1's checkpoint, resumed, this time with continuous batching.
    broken = unbroken.with_name(unbroken.name + "-broken")
    shutil.copytree(unbroken, broken)
    shutil.rmtree(broken / "checkpoints" / "step-00002")
    (broken / "checkpoints" / "latest").write_text("step-00001\n")
    train(config.model_copy(update={"out_dir": str(broken), "temperature": 1.5, "continuous_batching": True}))

    def step_two(out: Path) -> list[dict[str, object]]:
        records = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if "second" not in k} for r in records if r["step"] == 2]

    assert step_two(broken) == step_two(unbroken)
    assert len({r["r_perf"] for r in step_two(unbroken)}) > 1  # sampled: the group's episodes differ
    weights = [load_file(out / "checkpoints" / "step-00002" / "model.safetensors") for out in (unbroken, broken)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_skipping_zero_advantage_turns_trains_the_same_weights(tiny_warm_start: tuple[Path, ParlConfig],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Step 1's group is graded (a signal), step 2's scores 0 throughout (flat): step 2 then
    # moves the weights by AdamW's running moments alone, with every turn skipped.
    real, scored = rollout.score_response, [0]

    def first_step_graded(task, gold, response, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        score = real(task, gold, response, *args, **kwargs)
        scored[0] += 1
        return score.model_copy(update={"item_f1": min(1.0, len(set(response)) / 40) if scored[0] <= 4 else 0.0})

    monkeypatch.setattr(rollout, "score_response", first_step_graded)
    _, config = tiny_warm_start
    outs = []
    for skip in (False, True):
        scored[0] = 0
        out = Path(config.out_dir).with_name(Path(config.out_dir).name + f"-skip-{skip}")
        outs.append(train(config.model_copy(update={"out_dir": str(out), "skip_zero_advantage": skip})))
    plain, skipping = outs
    episodes = _lines(plain / "episodes.jsonl")
    assert len({e["r_perf"] for e in episodes[:4]}) > 1 and {e["total"] for e in episodes[4:]} == {0.0}
    assert [{k: v for k, v in e.items() if "second" not in k} for e in episodes] == \
        [{k: v for k, v in e.items() if "second" not in k} for e in _lines(skipping / "episodes.jsonl")]
    weights = [load_file(o / "checkpoints" / "step-00002" / "model.safetensors") for o in outs]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    flat = _lines(skipping / "metrics.jsonl")[1]
    assert flat["loss/skipped_rows"] == flat["train/samples"] > 0 and "loss/ratio" not in flat
    assert "loss/ratio" in _lines(plain / "metrics.jsonl")[1]


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _same_figures(out: Path, other: Path) -> None:
    """Both runs logged the same episodes and turns, and the same figures but times and how a step ran."""
    for name in ("episodes.jsonl", "generations.jsonl"):
        assert _lines(out / name) == _lines(other / name), name
    for a, b in zip(_lines(out / "metrics.jsonl"), _lines(other / "metrics.jsonl"), strict=True):
        assert replay_differences(a, b) == []
    weights = [load_file(o / "checkpoints" / "step-00002" / "model.safetensors") for o in (out, other)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


@pytest.fixture
def decoded_prompts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of every prompt the policy decodes from here on (the frozen sub-agent's aside)."""
    decoded: list[int] = []
    real = LocalModel.generate_ids

    async def counting(self: LocalModel, prompt_ids: list[int], banned: tuple[int, ...] = ()):  # noqa: ANN202
        if not self.name.startswith("frozen"):
            decoded.append(len(prompt_ids))
        return await real(self, prompt_ids, banned)

    monkeypatch.setattr(LocalModel, "generate_ids", counting)
    return decoded


@pytest.mark.usefixtures("answer_graded_score")
def test_a_run_started_over_replays_its_logged_steps_without_decoding(tiny_warm_start: tuple[Path, ParlConfig],
                                                                     decoded_prompts: list[int],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _, config = tiny_warm_start
    first = Path(config.out_dir).with_name(Path(config.out_dir).name + "-replay")
    cfg = config.model_copy(update={"out_dir": str(first), "temperature": 1.5})
    train(cfg)
    assert decoded_prompts and len(_lines(first / "generations.jsonl")) == 2 * config.group_size
    # The machine went with the checkpoints; the logs (in git) stayed.
    again = first.with_name(first.name + "-again")
    shutil.copytree(first, again)
    shutil.rmtree(again / "checkpoints")
    decoded_prompts.clear()
    judged: list[int | None] = []  # what the deadline check was told of each step
    monkeypatch.setattr(train_module, "step_fits", lambda folder, deadline, replay: judged.append(replay) is None)
    train(cfg.model_copy(update={"out_dir": str(again)}), deadline=Deadline(0.0))
    assert decoded_prompts == []  # both steps read back, none decoded
    assert judged == [1, 2]  # each judged as a replay
    assert [m[REPLAYED] for m in _lines(again / "metrics.jsonl")] == [1.0, 1.0]
    _same_figures(first, again)
    assert _lines(again / "generations.dropped.jsonl") == _lines(first / "generations.jsonl")

    # Started over and stopped again after replaying step 1 (a deadline, a session's end): the
    # next start still reads step 2 back, though no trim of its own cut it.
    twice = first.with_name(first.name + "-twice")
    shutil.copytree(first, twice)
    shutil.rmtree(twice / "checkpoints")
    train(cfg.model_copy(update={"out_dir": str(twice)}), until_step=1)
    train(cfg.model_copy(update={"out_dir": str(twice)}))
    assert decoded_prompts == []
    assert [m[REPLAYED] for m in _lines(twice / "metrics.jsonl")] == [1.0, 1.0]
    _same_figures(first, twice)

    # A log that does not fit the run (here, a turn's prompt) is not followed: that step and
    # every later one decode afresh, and since the draws are seeded, land where they did.
    astray = first.with_name(first.name + "-astray")
    shutil.copytree(first, astray)
    shutil.rmtree(astray / "checkpoints")
    lines = _lines(astray / "generations.jsonl")
    lines[0]["turns"][0]["prompt"] = "0" * 16  # step 1, episode 1
    (astray / "generations.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    decoded_prompts.clear()
    judged.clear()
    train(cfg.model_copy(update={"out_dir": str(astray)}), deadline=Deadline(0.0))
    assert decoded_prompts
    assert judged == [1, None]  # step 1 was to be replayed; once it was not, step 2 is judged as decoded
    assert [REPLAYED in m for m in _lines(astray / "metrics.jsonl")] == [False, False]
    _same_figures(first, astray)


def test_the_replay_check_goes_through_logged_steps_in_a_scratch_copy(tiny_warm_start: tuple[Path, ParlConfig],
                                                                     tmp_path: Path) -> None:
    # The real scorer here (no answer_graded_score): the script runs in its own process.
    _, config = tiny_warm_start
    run = tmp_path / "run"
    train(config.model_copy(update={"out_dir": str(run), "temperature": 1.5, "steps": 3}))
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "parl_replay_check.py"

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(script), str(run), *args], capture_output=True, text=True, timeout=600)

    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    proc = check("--from-step", "1", "--steps", "2", "--scratch", str(tmp_path / "scratch"))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line[:4].strip().isdigit()]
    assert [[cell.strip() for cell in row.split("|")[:6]] for row in rows] == [
        [str(s), "yes", "none", "0.0e+00", "same", "same"] for s in (2, 3)]
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before  # the run is only read
    # until_step stopped the scratch run after step 3 with its checkpoint.
    assert (tmp_path / "scratch" / "checkpoints" / "latest").read_text().strip() == "step-00003"

    # From the warm start (no checkpoint): the whole run, its last checkpoint rebuilt bit for bit.
    proc = check("--from-step", "0", "--steps", "3", "--scratch", str(tmp_path / "whole"))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line[:4].strip().isdigit()]
    assert [[cell.strip() for cell in row.split("|")[:6]] for row in rows] == [
        [str(s), "yes", "none", "0.0e+00", "same", "same"] for s in (1, 2, 3)]
    rebuilt, kept = tmp_path / "whole" / "checkpoints" / "step-00003", run / "checkpoints" / "step-00003"
    weights = sorted(p.name for p in kept.glob("*.safetensors"))
    assert weights and all((rebuilt / n).read_bytes() == (kept / n).read_bytes() for n in weights)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before

    proc = check("--from-step", "1", "--tolerance", "1")
    assert proc.returncode != 0 and "--tolerance must be at least 0 and below 1" in proc.stderr
    proc = check("--from-step", "3")
    assert proc.returncode != 0 and "holds no policy turns for step(s) [4]" in proc.stderr
    proc = check("--from-step", "-1")
    assert proc.returncode != 0 and "--from-step must be 0 or more" in proc.stderr
    shutil.rmtree(run / "checkpoints" / "step-00001")
    proc = check("--from-step", "1")
    assert proc.returncode != 0 and "no checkpoint of step 1 (checkpoints here: ['step-00002', 'step-00003'])" in proc.stderr


def test_replay_differences_are_relative_to_the_larger_size_and_one() -> None:
    first = {"step": 3, "loss/policy": -0.0544182, "loss/grad_norm": 12.0, "train/seconds": 598.4, REPLAYED: 1.0,
             "episode/total": float("nan"), "note": "a"}
    now = {**first, "loss/policy": -0.0544184, "loss/grad_norm": 12.0006, "train/seconds": 132.6}
    del now[REPLAYED]
    assert difference(-0.0544182, -0.0544184) == pytest.approx(2e-7)  # below 1: absolute
    assert difference(12.0, 12.0006) == pytest.approx(0.0006 / 12.0006)  # above 1: relative to the larger
    assert difference("a", "b") == math.inf and difference(1.0, None) == math.inf and difference(True, 1) == 0.0
    assert difference(float("nan"), float("nan")) == 0.0 and difference(float("nan"), 1.0) == math.inf
    assert replay_differences(first, now) == ["loss/grad_norm", "loss/policy"]  # times and how it ran aside
    assert replay_differences(first, now, 1e-5) == ["loss/grad_norm"] and replay_differences(first, now, 1e-4) == []
    assert largest_difference(first, now) == pytest.approx(0.0006 / 12.0006) and largest_difference(first, first) == 0.0
    assert replay_differences(first, {**now, "note": "b"}, 0.5) == ["note"]


@pytest.mark.usefixtures("answer_graded_score")
def test_a_replay_goes_on_through_differences_within_its_tolerance(tiny_warm_start: tuple[Path, ParlConfig],
                                                                  decoded_prompts: list[int]) -> None:
    # Another CPU rounds step 1's update otherwise (here: its logged loss, nudged in the ninth digit).
    _, config = tiny_warm_start
    first = Path(config.out_dir).with_name(Path(config.out_dir).name + "-rounded")
    cfg = config.model_copy(update={"out_dir": str(first), "temperature": 1.5})
    with pytest.raises(ValueError, match=r"replay tolerance must be at least 0 and below 1 \(got 1.0\)"):
        train(cfg, replay_tolerance=1.0)  # as the check script refuses it: at 1 any figure matches
    assert not first.exists()
    train(cfg)
    runs = {}
    for tolerance in (0.0, 1e-6):
        again = first.with_name(f"{first.name}-{tolerance}")
        shutil.copytree(first, again)
        shutil.rmtree(again / "checkpoints")
        metrics = _lines(again / "metrics.jsonl")
        metrics[0]["loss/policy"] += 1e-9
        (again / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
        decoded_prompts.clear()
        train(cfg.model_copy(update={"out_dir": str(again)}), replay_tolerance=tolerance)
        runs[tolerance] = (again, list(decoded_prompts))
    (exact, decoded), (tolerant, none_decoded) = runs[0.0], runs[1e-6]
    assert [REPLAYED in m for m in _lines(exact / "metrics.jsonl")] == [True, False] and decoded  # step 2 decoded afresh
    assert [m[REPLAYED] for m in _lines(tolerant / "metrics.jsonl")] == [1.0, 1.0] and none_decoded == []
    _same_figures(first, tolerant)


@pytest.mark.usefixtures("answer_graded_score")
def test_greedy_evaluation_every_step_leaves_training_as_it_was(tiny_warm_start: tuple[Path, ParlConfig]) -> None:
    _, config = tiny_warm_start
    plain = config.model_copy(update={"out_dir": config.out_dir + "-plain"})
    evaluated = config.model_copy(update={"out_dir": config.out_dir + "-eval", "eval_every": 1, "eval_tasks": 1})

    def trajectory(run: ParlConfig) -> list[tuple[float, ...]]:
        metrics = [json.loads(line) for line in (Path(run.out_dir) / "metrics.jsonl").read_text().splitlines()]
        return [(m["step"], m["episode/total"], m["loss/policy"], m["loss/grad_norm"]) for m in metrics]

    train(plain)
    train(evaluated)
    assert trajectory(evaluated) == trajectory(plain) and any(t[3] > 0 for t in trajectory(plain))
    assert not (Path(plain.out_dir) / "eval.jsonl").exists()
    log_file = Path(evaluated.out_dir) / "eval.jsonl"
    evals = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [e["step"] for e in evals] == [0, 1, 2]  # the warm start, then after each step
    for e in evals:
        assert e["world_seed"] == 78 and e["split"] == "dev" and e["tasks"] == 1 and e["episodes"] == 1
        assert 0.0 <= e["item_f1"] <= 1.0 and e["critical_steps"] <= 6
    # An evaluation lost with the process (killed after the checkpoint) is made when the run resumes.
    log_file.write_text("".join(line + "\n" for line in log_file.read_text().splitlines()[:2]))
    train(evaluated)
    assert [json.loads(line)["step"] for line in log_file.read_text().splitlines()] == [0, 1, 2]
    with pytest.raises(ValueError, match="no test tasks with 60–None rows in world seed 78 to evaluate on"):
        StepEvaluation(evaluated.model_copy(update={"eval_split": "test", "min_rows": 60}), ExpertModel(), None)


def test_finds_places_is_search_or_a_region_index_page() -> None:
    from parlswarm.models.scripted import reply_to_message
    from parlswarm.types import ModelResponse

    def turn(*calls: tuple[str, dict[str, object]]) -> ModelResponse:
        reply = {"content": None, "tool_calls": [{"name": n, "arguments": a} for n, a in calls]}
        return ModelResponse(message=reply_to_message(reply, 0))

    assert rollout.finds_places(turn(("search", {"query": "Europe countries"})))
    assert rollout.finds_places(turn(("open_page", {"doc_id": "region/europe", "page": 2})))
    assert not rollout.finds_places(turn(("open_page", {"doc_id": "fr/geography"})))
    assert not rollout.finds_places(turn(("search", {"query": "x"}), ("find", {"doc_id": "fr", "text": "Area"})))
    assert not rollout.finds_places(turn(("create_subagent", {"name": "r"})))
    assert not rollout.finds_places(ModelResponse(message=reply_to_message("the answer", 0)))


def test_expert_prefix_plays_until_the_places_are_known(tiny_warm_start: tuple[Path, ParlConfig]) -> None:
    import asyncio

    from parlswarm.models.local_settings import Sampling
    from parlswarm.trace.events import AgentStarted, ModelCalled, ToolStarted
    from parlswarm.world.tools import world_tools
    from parlswarm.world.world import World

    folder, config = tiny_warm_start
    policy = LocalModel.from_pretrained(folder, sampling=Sampling(temperature=1.0, max_new_tokens=24, seed=0))
    world = World.load(31, base=Factbook.load())
    task = next(t for t in make_tasks("train", world.factbook, Factbook.load(), 31) if t.spec.region is not None)
    case = rollout.TaskCase.from_world(task, 31)
    budgets = Budgets(max_critical_steps=12, max_orchestrator_steps=6, max_subagent_steps=1, max_tool_calls=40)
    episode = asyncio.run(rollout.run_episode(policy, policy, world_tools(world), case, budgets, prefix=rollout.expert_prefix()))
    assert episode.prefix_turns >= 2  # a search, then the region's index page
    # The orchestrator's first turns are the expert's look-up; the policy plays the turns after
    # it, and they alone are samples, the first prompted with the index page the expert opened.
    root = next(e.agent_id for e in episode.trace.events if isinstance(e, AgentStarted) and e.parent_id is None)
    calls = [e for e in episode.trace.events if isinstance(e, ToolStarted) and e.agent_id == root]
    assert calls[0].tool == "search" and calls[0].step == 0  # steps count from 0
    assert any(c.tool == "open_page" and '"region/' in c.arguments and c.step == episode.prefix_turns - 1 for c in calls)
    policy_turns = sum(1 for e in episode.trace.events if isinstance(e, ModelCalled) and e.agent_id == root) - episode.prefix_turns
    assert len(episode.samples) == policy_turns >= 1
    prompt = policy.tokenizer.decode(episode.samples[0].prompt_ids)
    assert "countries and territories" in prompt


def test_turn_tokens_counts_what_the_turns_read_and_wrote() -> None:
    samples = [Sample([1] * 10, [2] * 3, [0.0] * 3), Sample([1] * 30, [2] * 5, [0.0] * 5)]
    assert turn_tokens(samples) == {"train/completion_tokens": 8.0, "train/prompt_tokens_mean": 20.0,
                                    "train/longest_turn_tokens": 35.0}
    assert turn_tokens([]) == {"train/completion_tokens": 0.0, "train/prompt_tokens_mean": 0.0, "train/longest_turn_tokens": 0.0}


def test_an_episodes_record_caps_r_parallel_at_its_tasks_rows_when_asked() -> None:
    stats = EpisodeStats(subagents_created=9, subagents_assigned=9, subagents_finished=9, orchestrator_steps=2,
                         parallel_steps=1, critical_steps=4, total_steps=20, tool_calls=18, answered=True,
                         item_f1=1.0, success=True)
    task = SimpleNamespace(instance_id="world_dev_011")
    episode = SimpleNamespace(case=SimpleNamespace(task=task, world_seed=78, rows=6), stats=stats,
                              prefix_turns=2, error=None)
    config = ParlConfig.model_validate({"reward": {"parallel_cap": 12, "parallel_cap_rows": True}})
    record = episode_record(episode, config, 0.0)  # type: ignore[arg-type]
    assert record["rows"] == 6 and record["r_parallel"] == 1.0  # 9 sub-agents for 6 rows: capped at 6 of 6
    uncapped = episode_record(episode, config.model_copy(update={"reward": RewardConfig(parallel_cap=12)}), 0.0)  # type: ignore[arg-type]
    assert uncapped["r_parallel"] == 0.75  # 9 of 12


def test_prune_checkpoints_keeps_the_newest_and_the_latest(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    for step in (1, 2, 3, 4):
        (folder / f"step-{step:05d}").mkdir(parents=True)
        (folder / f"step-{step:05d}" / "trainer_state.pt").write_bytes(b"")
    (folder / "step-00005.tmp").mkdir()  # a save cut short: save_checkpoint's to clear
    (folder / "latest").write_text("step-00004\n")
    assert prune_checkpoints(tmp_path, None) == []
    assert [p.name for p in prune_checkpoints(tmp_path, 2)] == ["step-00001", "step-00002"]
    assert sorted(p.name for p in folder.iterdir()) == ["latest", "step-00003", "step-00004", "step-00005.tmp"]
    assert latest_checkpoint(tmp_path) == folder / "step-00004"
    (folder / "latest").write_text("step-00003\n")  # latest is never deleted, even when older than the kept
    assert prune_checkpoints(tmp_path, 1) == []
    with pytest.raises(ValueError, match="keep_checkpoints"):
        ParlConfig(keep_checkpoints=0)
