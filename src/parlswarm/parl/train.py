"""The PARL training loop: GRPO on the orchestrator, sub-agents frozen, budgets in critical steps.

One step, top to bottom:

1. draw ``tasks_per_step`` training tasks, each in a random training world seed;
2. roll out ``group_size`` episodes of each through the runtime (orchestrator sampling at
   ``temperature``, frozen sub-agents decoding greedily and cached);
3. reward each episode (:mod:`parlswarm.parl.rewards`, at training progress e = step/steps)
   and normalise rewards within each group into advantages;
4. update the orchestrator with the clipped GRPO loss over the tokens it generated;
5. log every reward term and episode statistic (JSONL and TensorBoard), checkpoint.

Resuming reloads the latest checkpoint (weights, optimiser, step, random state) and goes on.
The run's configuration is :mod:`parlswarm.parl.parl_config`; what it keeps on disk (logs,
checkpoints) :mod:`parlswarm.parl.run_folder`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from parlswarm.models.adapter import add_adapter, has_adapter, load_adapter, trainable
from parlswarm.models.base import Model
from parlswarm.models.cached import CachedModel
from parlswarm.models.local import LocalModel
from parlswarm.models.local_settings import Sampling
from parlswarm.models.local_specs import local_path
from parlswarm.parl.grpo import (
    Sample,
    batch_tensors,
    group_advantages,
    grpo_loss,
    keep_old_logprobs,
    pad_old_logprobs,
    token_logprobs,
)
from parlswarm.parl.parl_config import ParlConfig, run_differences
from parlswarm.parl.replay import (
    REPLAYED,
    EpisodeReplay,
    ReplayMismatch,
    Turn,
    generation_records,
    largest_difference,
    logged_generations,
    replay_differences,
    replays_for,
)
from parlswarm.parl.rewards import reward
from parlswarm.parl.rollout import Episode, TaskCase, expert_prefix, rollout_groups
from parlswarm.parl.run_folder import (
    COMMIT_FILE,
    ScalarLog,
    dropped_log,
    latest_checkpoint,
    logged_eval_steps,
    prune_checkpoints,
    read_log,
    record_start,
    record_warm_start,
    save_checkpoint,
    trim_log,
)
from parlswarm.provenance import git_commit
from parlswarm.tools import Toolset
from parlswarm.world.tools import offer_check

log = logging.getLogger(__name__)


# --- setup ---------------------------------------------------------------------------------


def _policy_path(spec: str) -> Path:
    path = local_path(spec)
    if not ((path / "config.json").is_file() or has_adapter(path)):
        raise FileNotFoundError(f"PARL warm start not found: {path} has neither config.json nor adapter_config.json")
    return path


def load_policy(config: ParlConfig, warm_start: Path, resume: Path | None) -> LocalModel:
    """The trainable orchestrator: the warm start or the latest checkpoint, with its own adapter under LoRA."""
    sampling = Sampling(temperature=config.temperature, max_new_tokens=config.max_new_tokens, seed=config.seed)
    if config.lora is None:
        return LocalModel.from_pretrained(resume or warm_start, name="orchestrator (PARL)", sampling=sampling,
                                          continuous=config.continuous_batching)
    policy = LocalModel.from_pretrained(warm_start, name="orchestrator (PARL)", sampling=sampling,
                                        continuous=config.continuous_batching)
    policy.model = load_adapter(policy.model, resume, trainable=True) if resume else add_adapter(policy.model, config.lora)
    return policy


def checkpoint_activations(model: torch.nn.Module) -> None:
    """Recompute each layer's activations in the backward pass instead of keeping them."""
    # Non-reentrant: under LoRA no input needs a gradient, which the reentrant form requires.
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # its name from transformers 5.x on
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def load_subagent(config: ParlConfig, warm_start: Path) -> tuple[Model, torch.nn.Module | None]:
    """The frozen sub-agent model, and its torch module when it is the warm start (the KL reference)."""
    if config.subagent == "expert" or config.subagent.startswith("expert:"):
        from parlswarm.models import load_model

        return load_model(config.subagent), None  # the scripted expert, e.g. expert:find
    path = warm_start if config.subagent == "same" else _policy_path(config.subagent)
    frozen = LocalModel.from_pretrained(
        path, name=f"frozen sub-agent ({path.name})", sampling=Sampling(temperature=0.0, max_new_tokens=config.max_new_tokens)
    )
    for p in frozen.model.parameters():
        p.requires_grad_(False)
    cached = CachedModel(frozen, namespace=str(path.resolve()))
    return cached, frozen.model if path == warm_start else None


def world_cases(seed: int, split: str, min_rows: int, max_rows: int | None) -> tuple[list[TaskCase], Toolset]:
    """The tasks of ``split`` in world ``seed`` with ``min_rows``–``max_rows`` rows, and that world's tools."""
    from parlswarm.world.factbook import Factbook
    from parlswarm.world.tasks import make_tasks
    from parlswarm.world.tools import world_tools
    from parlswarm.world.world import World

    real = Factbook.load()
    world = World.load(seed, base=real)
    cases = [TaskCase.from_world(t, seed) for t in make_tasks(split, world.factbook, real, seed)]  # type: ignore[arg-type]
    return [c for c in cases if c.rows >= min_rows and (max_rows is None or c.rows <= max_rows)], world_tools(world)


def load_task_pool(config: ParlConfig) -> tuple[dict[int, list[TaskCase]], dict[int, Toolset]]:
    """Tasks of the split within the row range, per training world seed, and each world's tools."""
    pool: dict[int, list[TaskCase]] = {}
    tools: dict[int, Toolset] = {}
    for seed in config.world_seeds:
        cases, tools[seed] = world_cases(seed, config.split, config.min_rows, config.max_rows)
        pool[seed] = [c for c in cases if config.task_ids is None or c.task.instance_id in config.task_ids]
        if not pool[seed]:
            raise ValueError(f"no {config.split} tasks with {config.min_rows}–{config.max_rows} rows in world seed {seed}")
    return pool, tools


class StepEvaluation:
    """The greedy evaluation a run makes every ``eval_every`` steps (see ParlConfig): the same
    cases each time, the policy decoding greedily, the run's sub-agents, prefix and budgets."""

    def __init__(self, config: ParlConfig, subagent: Model, prefix: Model | None) -> None:
        cases, self.tools = world_cases(config.eval_world_seed, config.eval_split, config.min_rows, config.max_rows)
        self.cases = cases[: config.eval_tasks]
        if not self.cases:
            raise ValueError(f"no {config.eval_split} tasks with {config.min_rows}–{config.max_rows} rows in world seed "
                             f"{config.eval_world_seed} to evaluate on (eval_world_seed, eval_split)")
        self.config, self.subagent, self.prefix = config, subagent, prefix

    def due(self, step: int) -> bool:
        every = self.config.eval_every
        return every is not None and (step == 0 or step % every == 0 or step == self.config.steps)

    def run(self, policy: LocalModel, step: int) -> dict[str, Any]:
        """One evaluation of ``policy`` as it is after ``step`` steps; its sampling is restored after."""
        from parlswarm.parl.evaluate import evaluate

        sampling = policy.sampling
        policy.sampling = Sampling(temperature=0.0, max_new_tokens=self.config.max_new_tokens)
        try:
            tools = offer_check(self.tools, policy, self.subagent)
            summary, _ = evaluate(f"step {step}", policy, self.subagent, tools, self.cases, self.config.budgets,
                                  prefix=self.prefix)
        finally:
            policy.sampling = sampling
        return {"step": step, "world_seed": self.config.eval_world_seed, "split": self.config.eval_split,
                "tasks": len(self.cases), **summary.model_dump(exclude={"label", "orchestrator", "subagent"})}


# --- one update ----------------------------------------------------------------------------


def turn_tokens(samples: Sequence[Sample]) -> dict[str, float]:
    """How much the policy read and wrote in one step's turns (all of them, before any subset is
    drawn): where a slow step's time went, generation (completion tokens) or reading (prompt)."""
    prompt = [len(s.prompt_ids) for s in samples]
    completion = [len(s.completion_ids) for s in samples]
    return {
        "train/completion_tokens": float(sum(completion)),
        "train/prompt_tokens_mean": sum(prompt) / len(prompt) if prompt else 0.0,
        "train/longest_turn_tokens": float(max((p + c for p, c in zip(prompt, completion)), default=0)),
    }


def contributes(sample: Sample, config: ParlConfig) -> bool:
    """Whether a turn can move the weights: a zero advantage zeroes the clipped term's
    gradient exactly, and only a KL term to the reference would still pull."""
    return not config.skip_zero_advantage or sample.advantage != 0.0 or config.kl_coef > 0


def update(
    policy: torch.nn.Module,
    reference: torch.nn.Module | None,
    optimizer: torch.optim.Optimizer,
    samples: Sequence[Sample],
    pad_id: int,
    config: ParlConfig,
) -> dict[str, float]:
    """``ppo_epochs`` passes of the clipped GRPO loss over ``samples``; returns mean loss parts.

    With ``skip_zero_advantage`` the turns that cannot move the weights (:func:`contributes`)
    are left out of both passes, yet every minibatch still steps the optimiser: AdamW moves
    the weights on a zero gradient too (its running moments), and the minibatches stay as
    drawn, so the weights are the same bits as with every turn run."""
    # Log-probabilities under the policy that sampled (this step's weights, before any update).
    # A minibatch is taken whole or not at all: its padding, and so its numbers, stay as drawn.
    with torch.no_grad():
        for i in range(0, len(samples), config.minibatch):
            chunk = samples[i : i + config.minibatch]
            if any(contributes(s, config) for s in chunk):
                ids, attention, mask = batch_tensors(chunk, pad_id)
                keep_old_logprobs(chunk, token_logprobs(policy, ids, attention, config.temperature, wanted=mask))
    parts: dict[str, list[float]] = {"loss": [], "policy": [], "kl": [], "clip_fraction": [], "ratio": [], "grad_norm": []}
    skipped = 0
    order = list(range(len(samples)))
    rng = random.Random(config.seed)
    for _ in range(config.ppo_epochs):
        rng.shuffle(order)
        for i in range(0, len(order), config.minibatch):
            chunk = [samples[j] for j in order[i : i + config.minibatch]]
            optimizer.zero_grad(set_to_none=True)
            # One row's graph at a time, gradients accumulated: the loss is a mean over rows, so
            # Σ loss_row / rows is the minibatch's loss; the diagnostics are token-weighted as in
            # grpo_loss. A turn thousands of tokens long holds gigabytes of graph on its own.
            # A skipped turn's loss, policy term and KL are 0, so it still weighs in their means;
            # its ratio was never taken, so those are over the turns that ran (``ran``).
            loss, tokens, ran = 0.0, 0.0, 0.0
            weighted = {"policy": 0.0, "kl": 0.0, "clip_fraction": 0.0, "ratio": 0.0}
            for s in chunk:
                ids, attention, mask = batch_tensors([s], pad_id)
                n = float(mask.sum())
                if n == 0:  # nothing generated: adds 0 to the mean, and has no graph to go back through
                    continue
                if not contributes(s, config):
                    skipped, tokens = skipped + 1, tokens + n
                    continue
                ref = None
                if reference is not None and config.kl_coef > 0:
                    with torch.no_grad():
                        ref = token_logprobs(reference, ids, attention, config.temperature, wanted=mask)
                logp = token_logprobs(policy, ids, attention, config.temperature, wanted=mask)
                old = pad_old_logprobs([s], ids.shape[1])
                out = grpo_loss(logp, old, torch.tensor([s.advantage]), mask, clip=config.clip, ref_logp=ref, kl_coef=config.kl_coef)
                (out.loss / len(chunk)).backward()
                loss += out.loss.item() / len(chunk)
                tokens, ran = tokens + n, ran + n
                for k, v in (("policy", out.policy), ("kl", out.kl), ("clip_fraction", out.clip_fraction), ("ratio", out.ratio_mean)):
                    weighted[k] += v * n
            if ran == 0 and tokens > 0:
                # Every turn skipped: the zero gradient a backward would have left, so that AdamW steps as it would have.
                for p in trainable(policy):
                    p.grad = torch.zeros_like(p)
            norm = torch.nn.utils.clip_grad_norm_(trainable(policy), config.max_grad_norm)
            optimizer.step()
            parts["loss"].append(loss)
            for k, v in weighted.items():
                if k in ("policy", "kl"):
                    parts[k].append(v / max(tokens, 1.0))
                elif ran > 0 or not config.skip_zero_advantage:
                    parts[k].append(v / max(ran, 1.0))
            parts["grad_norm"].append(float(norm))
    if config.skip_zero_advantage:  # a figure no turn gave is left out, not written as 0
        return {**{k: statistics.fmean(v) for k, v in parts.items() if v}, "skipped_rows": float(skipped)}
    return {k: statistics.fmean(v) if v else 0.0 for k, v in parts.items()}


def episode_facts(ep: Episode) -> dict[str, Any]:
    """What one episode was and did, reward aside: a line of episodes.jsonl, or of an evaluation's."""
    return {
        "task": ep.case.task.instance_id,
        "world_seed": ep.case.world_seed,
        "rows": ep.case.rows,
        **ep.stats.model_dump(),
        "parallel_share": ep.stats.parallel_share,
        "prefix_turns": ep.prefix_turns,
        "error": ep.error,
    }


def episode_record(ep: Episode, config: ParlConfig, progress: float) -> dict[str, Any]:
    return {**reward(ep.stats, config.reward, progress, rows=ep.case.rows).model_dump(), **episode_facts(ep)}


def step_metrics(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    keys = ("total", "r_parallel", "r_finish", "r_perf", "lambda1", "lambda2", "lambda_aux", "item_f1",
            "subagents_created", "subagents_assigned", "subagents_finished", "parallel_share", "critical_steps",
            "total_steps", "orchestrator_steps", "tool_calls")
    out = {f"episode/{k}": statistics.fmean(float(r[k]) for r in records) for k in keys}
    out["episode/success"] = statistics.fmean(float(r["success"]) for r in records)
    out["episode/answered"] = statistics.fmean(float(r["answered"]) for r in records)
    out["episode/errors"] = float(sum(1 for r in records if r["error"]))
    return out



# --- the loop ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    """When a run is to have stopped (``at``, a ``time.time()``), and how many times its longest
    decoded step to leave for the next decoded step (``margin``, ``--stop-margin``): a step takes
    as long as its episodes' turns make it, so the longest so far bounds the next only roughly
    (how roughly, measured on the grid's runs: docs/parl.md, 'The trainer')."""

    at: float
    margin: float = 1.0

    def __post_init__(self) -> None:
        if not self.margin >= 1.0:
            raise ValueError(f"the deadline's margin is a number of at least 1 (times the run's longest step), "
                             f"not {self.margin}")


def deadline_after(minutes: float | None, margin: float = 1.0) -> Deadline | None:
    """The deadline ``minutes`` from now (``--stop-after``), leaving ``margin`` times the run's
    longest step for the next (``--stop-margin``); None for no deadline."""
    return None if minutes is None else Deadline(time.time() + 60 * minutes, margin)


def step_fits(out: Path, deadline: Deadline, now: float | None = None, replay: int | None = None) -> bool:
    """Whether another step of the run in ``out`` can end by ``deadline``.

    A step to be decoded is judged by the run's longest decoded step, logged now or in an
    earlier start (a replayed step, which decodes nothing, is no guide), times the deadline's
    margin, so a run with none logged yet starts one if the deadline has not passed. ``replay``,
    the step (counted from 1) about to be replayed from its logged policy turns, is judged by
    what a replay does again, with no margin (it decodes nothing and updates on the turns it
    updated on before): the longest update logged for that step in its earlier starts, plus the
    longest rollout of a step replayed so far. A run started over then replays its steps up to
    the deadline instead of stopping a decoded step's time short of it (if the replay finds the
    run gone elsewhere, the step is decoded after all and may end past the deadline)."""
    lines = [*read_log(out / "metrics.jsonl"), *read_log(dropped_log(out / "metrics.jsonl"))]

    def longest(key: str, of: Iterable[dict[str, Any]]) -> float:
        return max((float(m.get(key, 0.0)) for m in of), default=0.0)

    needed = deadline.margin * longest("train/seconds", (m for m in lines if not m.get(REPLAYED)))
    earlier = [m for m in lines if m.get("step") == replay and "train/update_seconds" in m]
    if replay is not None and earlier:
        needed = longest("train/update_seconds", earlier) + longest("train/rollout_seconds",
                                                                    (m for m in lines if m.get(REPLAYED)))
    return (time.time() if now is None else now) + needed <= deadline.at


def rollouts(
    policy: LocalModel, subagent_model: Model, tools: dict[int, Toolset], cases: list[TaskCase], config: ParlConfig,
    prefix: Model | None, step: int, logged: dict[int, list[list[Turn]]], out: Path,
) -> tuple[list[Episode], bool]:
    """Step ``step``'s episodes (0-based), and whether they were replayed: read back from
    ``logged`` (:func:`~parlswarm.parl.replay.logged_generations`) where it holds the step, and
    decoded otherwise or where the replay finds the run gone elsewhere (``logged`` is then
    emptied: no later step can be replayed either)."""
    def decode() -> list[Episode]:
        policy.start_sampling_round(step)  # a resumed run samples this step as an unbroken one did
        return asyncio.run(rollout_groups(policy, subagent_model, tools, cases, config.group_size, config.budgets,
                                          prefix=prefix))

    turns = logged.pop(step + 1, None)
    replays: list[EpisodeReplay] | None = None
    if turns is not None:
        replays = replays_for(step + 1, turns, len(cases) * config.group_size)
    if replays is None:
        return decode(), False
    try:
        episodes = asyncio.run(rollout_groups(policy, subagent_model, tools, cases, config.group_size, config.budgets,
                                              prefix=prefix, replays=[r.output_of for r in replays]))
        unread = [r for r in replays if r.used != len(r.turns)]
        if unread:
            raise ReplayMismatch(f"step {step + 1}, episode {unread[0].episode + 1}: ended after {unread[0].used} of "
                                 f"its {len(unread[0].turns)} logged policy turns")
    except ReplayMismatch as exc:
        log.warning("%s: %s; the step is decoded afresh, and so is every later one", out, exc)
        logged.clear()
        return decode(), False
    return episodes, True


def train(
    config: ParlConfig,
    *,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    deadline: Deadline | None = None,
    until_step: int | None = None,
    replay_tolerance: float = 0.0,
) -> Path:
    """Run (or resume) PARL training; returns the output folder.

    ``deadline``: start no step that :func:`step_fits` says would end after it, and stop with a
    checkpoint of the last step done, so that a machine lent for a few hours ends its session
    with the run resumable (``metrics.jsonl`` then holds fewer than ``steps``).
    ``until_step``: stop, with a checkpoint, once the run has done that many of its steps (a
    check that goes through a few steps of a run, as ``benchmarks/parl_replay_check.py`` does).
    ``replay_tolerance``: a replayed step whose figures differ from its first run's by no more than
    this (:func:`~parlswarm.parl.replay.difference`: another CPU's rounding) does not end the
    replay; by default any difference does. It is below 1: at 1 every figure would match any other."""
    if not 0.0 <= replay_tolerance < 1.0:
        raise ValueError(f"the replay tolerance must be at least 0 and below 1 (got {replay_tolerance})")
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "config.yaml"
    # Read through ParlConfig, so that an option added since the run began counts at its default.
    differs = run_differences(ParlConfig.model_validate(yaml.safe_load(saved.read_text(encoding="utf-8"))), config) \
        if saved.is_file() else []
    if differs:
        raise ValueError(f"{out} holds a run with another config ({'; '.join(differs)}); use a new out_dir or the "
                         "same config to resume")
    saved.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    if not (out / COMMIT_FILE).exists():
        (out / COMMIT_FILE).write_text(f"{git_commit() or ''}\n", encoding="utf-8")  # the code the run started with

    warm_start = _policy_path(config.policy)
    resume = latest_checkpoint(out)
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.torch_threads)
    policy = load_policy(config, warm_start, resume)
    if config.gradient_checkpointing:
        checkpoint_activations(policy.model)
    record_warm_start(out, config, warm_start, resume)
    subagent_model, frozen_module = load_subagent(config, warm_start)
    reference = frozen_module if frozen_module is not None else None
    if reference is None and config.kl_coef > 0:
        reference = LocalModel.from_pretrained(warm_start).model
        for p in reference.parameters():
            p.requires_grad_(False)
    pool, tools = load_task_pool(config)
    tools = {seed: offer_check(t, policy, subagent_model) for seed, t in tools.items()}  # as the policy was trained
    prefix = expert_prefix(config.prefix_notes) if config.expert_prefix else None
    optimizer = torch.optim.AdamW(trainable(policy.model), lr=config.lr, weight_decay=0.0)
    rng = random.Random(config.seed)
    start = 0
    if resume is not None:
        state = torch.load(resume / "trainer_state.pt", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        start = int(state["step"])
        log.info("resuming %s from step %d", out, start)
    trim_log(out, start)
    last = config.steps if until_step is None else min(config.steps, until_step)
    if start < last:
        record_start(out, start, replay_tolerance)
    # The steps still to do go through again where an earlier start logged them: read back from
    # generations.dropped.jsonl, whether this start cut them or an earlier one did (a run
    # started over and stopped again before replaying them all).
    logged = logged_generations(out, range(start + 1, config.steps + 1))
    first_runs = {m["step"]: m for m in read_log(dropped_log(out / "metrics.jsonl")) if m["step"] in logged}
    if logged:
        log.info("%s: steps %s are replayed from generations.dropped.jsonl (their policy turns read back, not decoded)",
                 out, sorted(logged))
    scalars_log = ScalarLog(out)
    evaluation = StepEvaluation(config, subagent_model, prefix) if config.eval_every else None
    try:
        # The warm start's figure before the first step (or a resumed run's, if the run stopped before it was written).
        if evaluation is not None and evaluation.due(start) and start not in logged_eval_steps(out):
            scalars_log.write_eval(evaluation.run(policy, start))
        checkpointed = start
        for step in range(start, last):
            # A step to be replayed only updates: judged by its own earlier updates, not by a decoded step.
            replay = step + 1 if step + 1 in logged else None
            if deadline is not None and not step_fits(out, deadline, replay=replay):
                log.warning("%s: stopped after step %d of %d: the next step would not end by the deadline", out, step,
                            config.steps)
                if checkpointed < step:  # a checkpoint_every above 1: keep the steps done since the last one
                    save_checkpoint(out, step, policy, optimizer, rng)
                    prune_checkpoints(out, config.keep_checkpoints)
                break
            t0 = time.perf_counter()
            progress = step / config.steps
            cases = []
            for _ in range(config.tasks_per_step):
                seed = rng.choice(config.world_seeds)
                cases.append(rng.choice(pool[seed]))
            prefilled = (policy.stats.prompt_tokens, policy.stats.reused_tokens)
            episodes, replayed = rollouts(policy, subagent_model, tools, cases, config, prefix, step, logged, out)
            t_rollout = time.perf_counter()
            # The update changes the weights, which voids the kept prefixes: free their memory for it now.
            policy.prefix_cache.clear()
            records = [episode_record(ep, config, progress) for ep in episodes]
            advantages = group_advantages([r["total"] for r in records], [ep.group for ep in episodes])
            samples: list[Sample] = []
            for n, (ep, adv) in enumerate(zip(episodes, advantages)):
                for s in ep.samples:
                    s.advantage, s.episode = adv, n
                    samples.append(s)
            turns = len(samples)
            tokens = turn_tokens(samples)
            if config.max_samples_per_step is not None and turns > config.max_samples_per_step:
                # A uniform subset keeps the gradient estimate unbiased, at higher variance.
                samples = rng.sample(samples, config.max_samples_per_step)
            policy.model.train()
            losses = update(policy.model, reference, optimizer, samples, policy.pad_id, config) if samples else {}
            policy.model.eval()
            t_end = time.perf_counter()
            scalars = {**step_metrics(records), **{f"loss/{k}": v for k, v in losses.items()},
                       "train/samples": float(len(samples)), "train/turns": float(turns), "train/seconds": t_end - t0,
                       "train/rollout_seconds": t_rollout - t0, "train/update_seconds": t_end - t_rollout,
                       **tokens, "train/progress": progress,
                       # Prompt tokens the rollouts' policy turns reused from the prefix cache, of all they sent.
                       "train/reused_prompt_share": (policy.stats.reused_tokens - prefilled[1])
                       / max(1, policy.stats.prompt_tokens - prefilled[0])}
            if isinstance(subagent_model, CachedModel):
                scalars["train/subagent_cache_hits"] = float(subagent_model.hits)
            if replayed:
                scalars[REPLAYED] = 1.0
                then, now = first_runs.get(step + 1, {}), {"step": step + 1, **scalars}
                differs = replay_differences(then, now, replay_tolerance)
                if differs:
                    log.warning("%s: replayed step %d differs from its first run in %s; later steps are decoded afresh",
                                out, step + 1, ", ".join(differs))
                    logged.clear()
                elif drift := largest_difference(then, now):
                    log.info("%s: replayed step %d differs from its first run by at most %.1e, within the tolerance of "
                             "%.1e: replaying goes on", out, step + 1, drift, replay_tolerance)
            scalars_log.write(step + 1, scalars, records, generation_records(episodes))
            if on_step is not None:
                on_step(step + 1, scalars)
            if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
                save_checkpoint(out, step + 1, policy, optimizer, rng)
                prune_checkpoints(out, config.keep_checkpoints)
                checkpointed = step + 1
            # Greedy decoding draws no random numbers: the evaluation leaves the run's draws as they were.
            if evaluation is not None and evaluation.due(step + 1):
                scalars_log.write_eval(evaluation.run(policy, step + 1))
        else:
            if checkpointed < last:  # until_step ended the run between two checkpoints
                save_checkpoint(out, last, policy, optimizer, rng)
                prune_checkpoints(out, config.keep_checkpoints)
    finally:
        scalars_log.close()
        if isinstance(subagent_model, CachedModel):
            subagent_model.close()
    return out
