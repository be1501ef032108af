"""Supervised warm start: expert traces from real runtime runs, then next-token training on assistant turns.

1. **Traces** (:mod:`parlswarm.parl.traces`): the scripted expert solves training tasks in
   many counterfactual worlds through the ordinary runtime, in single mode (serial) and swarm
   mode; every conversation is kept exactly as the runtime fed it to the model. Many world
   seeds, so the model learns to read pages rather than memorise facts.
2. **Notes** (:mod:`parlswarm.parl.notes`): the teacher writes down, in the text of each turn,
   what the page it has just read gives for the task, so that the values survive context
   folding and the final table can be copied from the notes.
3. **Mix** (here): orchestrator samples are drawn with a configurable parallel share (default
   mostly serial, as the warm start PARL needs); sub-agent samples from the swarm runs'
   sub-agents; optionally relabelled on-policy turns (:mod:`parlswarm.parl.relabel`).
4. **Training** (here): next-token loss on assistant tokens only (the mask from
   :meth:`LocalModel.training_samples`), optionally with the copying task of
   :mod:`parlswarm.parl.copy_task` and the comparing task of :mod:`parlswarm.parl.compare_task`;
   AdamW with warm-up and cosine decay, periodic evaluation on dev-world samples (loss, token
   accuracy, whole-turn exact match), checkpoints with optimiser and random state, resume. The
   configuration is :mod:`parlswarm.parl.sft_config`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import torch

from parlswarm.models.adapter import ADAPTER_CONFIG, add_adapter, has_adapter, load_adapter, trainable
from parlswarm.models.deepen import deepen, expansion_points
from parlswarm.models.local import LocalModel, load_local, module_device
from parlswarm.models.local_settings import SETTINGS_FILE, LocalSettings
from parlswarm.models.local_specs import local_path, weights_digest
from parlswarm.models.nano import NanoConfig, build_model, parameter_count, train_tokenizer, write_settings
from parlswarm.parl.compare_task import compare_sampler
from parlswarm.parl.copy_task import CopySampler, copy_loss, copy_sampler, ordinary_tokens
from parlswarm.parl.label_task import label_sampler
from parlswarm.parl.next_place_task import next_place_sampler
from parlswarm.parl.sft_config import DataConfig, OnPolicyConfig, SFTConfig, TrainConfig
from parlswarm.parl.tool_word_task import tool_word_sampler
from parlswarm.parl.traces import Conversation, record_traces
from parlswarm.provenance import git_changes, git_commit
from parlswarm.types import content_text
from parlswarm.world.pages import opened_region

log = logging.getLogger(__name__)

# A sample's kind: a conversation's, except that with ``data.delegated_samples`` the turns of a
# parallel conversation after its create_subagent turn (assign, merge) are "delegated", and with
# ``data.answer_samples`` the final answer turn of a serial conversation is "answer", and with
# ``data.start_samples`` its turns up to opening the region's index page are "start", and with
# ``data.verdict_samples`` any conversation's turn right after a ``check`` result is "verdict".
SampleKind = Literal["serial", "parallel", "delegated", "answer", "subagent", "start", "verdict"]

# Data keys added after runs were drawn, with the value that leaves the draw as it was.
LATER_DATA_KEYS: dict[str, Any] = {"check_tool": False, "verdict_samples": None}


# --------------------------------------------------------------------------------------------
# Samples


@dataclass
class Sample:
    ids: list[int]
    mask: list[bool]
    kind: SampleKind

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Dataset:
    train: list[Sample]
    dev: list[Sample]
    stats: dict[str, Any] = field(default_factory=dict)


def _turn_refs(
    conversations: Sequence[Conversation],
    delegated: bool = False,
    answers: bool = False,
    starts: bool = False,
    verdicts: bool = False,
) -> dict[SampleKind, list[tuple[int, int]]]:
    """(conversation, turn) of every trained turn by sample kind.

    ``delegated``: a parallel conversation's turns after its decision are a pool of their own;
    ``answers``: so is a serial conversation's final answer turn; ``starts``: so are its turns
    up to opening the region's index page (a cut "start" conversation has no others);
    ``verdicts``: so is any conversation's turn right after a ``check`` result.
    """
    refs: dict[SampleKind, list[tuple[int, int]]] = {k: [] for k in get_args(SampleKind)}
    for ci, conv in enumerate(conversations):
        decided = _decision_turn(conv) if delegated and conv.kind == "parallel" else None
        answered = _answer_turn(conv) if answers and conv.kind == "serial" else None
        started = _start_end(conv) if starts and conv.kind in ("serial", "start") else None
        checked = check_answers(conv) if verdicts else {}
        for ti in conv.trained_turns():
            if ti in checked:
                refs["verdict"].append((ci, ti))
            elif decided is not None and ti > decided:
                refs["delegated"].append((ci, ti))
            elif ti == answered:
                refs["answer"].append((ci, ti))
            elif conv.kind == "start" or (started is not None and ti <= started):
                refs["start"].append((ci, ti))
            else:
                refs[conv.kind].append((ci, ti))
    return refs


def _decision_turn(conv: Conversation) -> int | None:
    """The index of the assistant turn that first calls create_subagent, if any."""
    replies = [m for m in conv.messages if m.role == "assistant"]
    for turn, message in enumerate(replies):
        if any(c.function.name == "create_subagent" for c in getattr(message, "tool_calls", None) or []):
            return turn
    return None


def _start_end(conv: Conversation) -> int | None:
    """The index of the assistant turn that first opens a region's index page, if any."""
    replies = [m for m in conv.messages if m.role == "assistant"]
    for turn, message in enumerate(replies):
        for call in getattr(message, "tool_calls", None) or []:
            if opened_region(call.function.name, call.function.arguments) is not None:
                return turn
    return None


def check_answers(conv: Conversation) -> dict[int, Literal["yes", "no"]]:
    """The assistant turns that follow a ``check`` result, by index, with the answer that turn
    should copy: "no" when any check of the turn before answered no (an error answers neither)."""
    answers: dict[int, Literal["yes", "no"]] = {}
    turn, checks, said = -1, set[str](), set[str]()
    for message in conv.messages:
        if message.role == "assistant":
            if said:
                answers[turn + 1] = "no" if "no" in said else "yes"
            turn += 1
            checks = {c.id for c in getattr(message, "tool_calls", None) or [] if c.function.name == "check"}
            said = set()
        elif message.role == "tool" and message.tool_call_id in checks:
            word = content_text(message.content).partition(":")[0]
            if word in ("yes", "no"):
                said.add(word)
    return answers


def _answer_turn(conv: Conversation) -> int | None:
    """The index of the last assistant turn when it calls no tool (the final answer), if so."""
    replies = [m for m in conv.messages if m.role == "assistant"]
    if replies and not getattr(replies[-1], "tool_calls", None):
        return len(replies) - 1
    return None


def encode_turn(lm: LocalModel, conv: Conversation, turn: int) -> tuple[list[int], list[bool]]:
    """Assistant turn ``turn`` of ``conv`` as SFT trains it: token ids, and the mask of trained ones."""
    idx = [i for i, m in enumerate(conv.messages) if m.role == "assistant"][turn]
    if lm.settings.keep_tool_results is None:
        # One sequence for the whole prefix: keep the mask of this turn only.
        ids, mask = lm.encode_conversation(conv.messages[: idx + 1], conv.tools)
        prior = lm.encode_conversation(conv.messages[:idx], conv.tools)[0] if idx else []
        return ids, [m and i >= len(prior) for i, m in enumerate(mask)]
    # This turn alone: encoding every earlier turn as well made drawing quadratic in a run's length.
    return lm.folded_turn_sample(conv.messages[: idx + 1], conv.tools)


def draw_samples(
    lm: LocalModel,
    conversations: Sequence[Conversation],
    counts: dict[SampleKind, int],
    max_tokens: int,
    rng: random.Random,
) -> tuple[list[Sample], dict[str, int]]:
    """Draw turns of each kind (with replacement when a pool is small) and encode them; verdict
    turns half after a check that said yes and half after one that said no, whatever the pool's mix."""
    refs = _turn_refs(
        conversations,
        delegated="delegated" in counts,
        answers="answer" in counts,
        starts="start" in counts,
        verdicts="verdict" in counts,
    )
    samples: list[Sample] = []
    skipped = 0
    for kind, n in counts.items():
        if kind == "verdict":
            said = {ci: check_answers(conversations[ci]) for ci in {ci for ci, _ in refs[kind]}}
            pools = [[(ci, ti) for ci, ti in refs[kind] if said[ci][ti] == answer] for answer in ("yes", "no")]
            chosen = _drawn(pools[0], n - n // 2, rng) + _drawn(pools[1], n // 2, rng)
        else:
            chosen = _drawn(refs[kind], n, rng)
        for ci, ti in chosen:
            ids, mask = encode_turn(lm, conversations[ci], ti)
            if len(ids) > max_tokens or not any(mask):
                skipped += 1
                continue
            samples.append(Sample(ids, mask, kind))
    return samples, {"too_long": skipped, **{f"pool_{k}": len(v) for k, v in refs.items()}}


def _drawn(pool: list[tuple[int, int]], n: int, rng: random.Random) -> list[tuple[int, int]]:
    """``n`` of ``pool``, with replacement when it holds fewer; none from an empty pool."""
    if n <= 0 or not pool:
        return []
    return rng.sample(pool, n) if n <= len(pool) else [rng.choice(pool) for _ in range(n)]


def sample_counts(data: DataConfig, scale: float = 1.0) -> dict[SampleKind, int]:
    orch = data.orchestrator_samples * scale
    counts: dict[SampleKind, int] = {
        "serial": round(orch * (1 - data.orchestrator_parallel_share)),
        "parallel": round(orch * data.orchestrator_parallel_share),
        "subagent": round(data.subagent_samples * scale),
    }
    if data.delegated_samples is not None:
        counts["delegated"] = round(data.delegated_samples * scale)
    if data.answer_samples is not None:
        counts["answer"] = round(data.answer_samples * scale)
    if data.start_samples is not None:
        counts["start"] = round(data.start_samples * scale)
    if data.verdict_samples is not None:
        counts["verdict"] = round(data.verdict_samples * scale)
    return counts


# --------------------------------------------------------------------------------------------
# Training


def length_groups(ordered: Sequence[Sample], batch_tokens: int) -> list[list[Sample]]:
    """``ordered`` (shortest first) cut into runs of about ``batch_tokens`` tokens once padded to their longest."""
    groups: list[list[Sample]] = []
    current: list[Sample] = []
    for s in ordered:
        if current and (len(current) + 1) * len(s) > batch_tokens:
            groups.append(current)
            current = []
        current.append(s)
    if current:
        groups.append(current)
    return groups


def batches(samples: Sequence[Sample], batch_tokens: int, rng: random.Random) -> Iterator[list[Sample]]:
    """Endless shuffled batches of samples of similar length, about ``batch_tokens`` padded tokens each."""
    while True:
        groups = length_groups(sorted(samples, key=lambda s: (len(s), rng.random())), batch_tokens)
        rng.shuffle(groups)
        yield from groups


def collate(group: Sequence[Sample], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, attention mask and target mask (True where the next token is trained)."""
    width = max(len(s) for s in group)
    ids = torch.full((len(group), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(group), width), dtype=torch.long)
    target = torch.zeros((len(group), width), dtype=torch.bool)
    for i, s in enumerate(group):
        ids[i, : len(s)] = torch.tensor(s.ids)
        attention[i, : len(s)] = 1
        target[i, : len(s)] = torch.tensor(s.mask)
    return ids, attention, target


def noised(ids: torch.Tensor, target: torch.Tensor, rate: float, vocab: tuple[int, int]) -> torch.Tensor:
    """``ids`` with a share ``rate`` of the target tokens replaced by random ordinary tokens (``train.input_noise``)."""
    hit = target & (torch.rand(ids.shape) < rate)
    out = ids.clone()
    out[hit] = torch.randint(vocab[0], vocab[1], (int(hit.sum()),))
    return out


def verdict_words(tokenizer: Any) -> list[tuple[list[int], int]]:
    """How ``tokenizer`` writes the word of a verdict line (``Name (code): yes: kept`` / ``no: left out``):
    the tokens of ``): yes:`` and ``): no:``, each with the index of the token that holds the word."""
    patterns = []
    for word in ("yes", "no"):
        tokens = tokenizer.encode(f"): {word}:", add_special_tokens=False)
        at = next((i for i, t in enumerate(tokens) if word in tokenizer.decode([t])), None)
        if at is None:
            raise ValueError(f"the tokenizer writes the verdict word {word!r} across tokens: it cannot be weighted")
        patterns.append((tokens, at))
    return patterns


def verdict_positions(ids: torch.Tensor, target: torch.Tensor, patterns: Sequence[tuple[list[int], int]]) -> torch.Tensor:
    """True where a trained token is the word of a verdict line (one of ``patterns``, see verdict_words)."""
    found = torch.zeros_like(target)
    for tokens, at in patterns:
        if ids.shape[1] < len(tokens):
            continue
        hit = (ids.unfold(1, len(tokens), 1) == torch.tensor(tokens)).all(-1)
        rows, starts = hit.nonzero(as_tuple=True)
        found[rows, starts + at] = True
    return found & target


def masked_loss(
    model: Any,
    ids: torch.Tensor,
    attention: torch.Tensor,
    target: torch.Tensor,
    inputs: torch.Tensor | None = None,
    verdicts: torch.Tensor | None = None,
    verdict_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy on target tokens only; the output layer runs only where a token is trained.

    ``inputs``: what the model reads, when not ``ids`` (noised); the labels are always ``ids``.
    ``verdicts``: the verdict words among the targets (verdict_positions); their accuracy is
    reported, and each counts ``verdict_weight`` times in the loss.
    """
    device = module_device(model)
    ids, attention, target = ids.to(device), attention.to(device), target.to(device)
    inputs = ids if inputs is None else inputs.to(device)
    hidden = model.get_decoder()(input_ids=inputs, attention_mask=attention).last_hidden_state
    # Position t predicts token t+1: trained positions are those whose next token is a target.
    predict = target[:, 1:]
    states = hidden[:, :-1][predict]
    labels = ids[:, 1:][predict]
    logits = model.get_output_embeddings()(states)
    verdict = verdicts.to(device)[:, 1:][predict] if verdicts is not None else None
    if verdict is not None and verdict_weight != 1.0:
        weight = 1.0 + (verdict_weight - 1.0) * verdict.float()
        loss = (torch.nn.functional.cross_entropy(logits.float(), labels, reduction="none") * weight).sum() / weight.sum()
    else:
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
    extra: dict[str, float] = {}
    with torch.no_grad():
        correct = (logits.argmax(-1) == labels).float()
        if verdict is not None and verdict.any():
            extra = {"verdict_acc": correct[verdict].mean().item(), "verdicts": float(verdict.sum())}
        # Whole-turn exact match: every target token of a sequence right.
        per_row = torch.zeros(ids.shape[0], device=device)
        rows = predict.nonzero()[:, 0]
        per_row.index_add_(0, rows, 1 - correct)
        exact = (per_row == 0).float().mean().item()
    metrics = {"loss": loss.item(), "token_acc": correct.mean().item(), "turn_exact": exact, "tokens": float(labels.numel())}
    return loss, {**metrics, **extra}


def evaluate(
    model: Any, samples: Sequence[Sample], pad_id: int, batch_tokens: int,
    patterns: Sequence[tuple[list[int], int]] = (),
) -> dict[str, float]:  # fmt: skip
    """Dev figures (unweighted); with ``patterns`` (verdict_words), also the accuracy on verdict words."""
    if not samples:
        return {}
    model.eval()
    totals = {"loss": 0.0, "token_acc": 0.0, "turn_exact": 0.0, "tokens": 0.0, "verdict_right": 0.0, "verdicts": 0.0}
    rows = 0
    with torch.no_grad():
        for g in length_groups(sorted(samples, key=len), batch_tokens):
            ids, attention, target = collate(g, pad_id)
            verdicts = verdict_positions(ids, target, patterns) if patterns else None
            _, m = masked_loss(model, ids, attention, target, verdicts=verdicts)
            totals["loss"] += m["loss"] * m["tokens"]
            totals["token_acc"] += m["token_acc"] * m["tokens"]
            totals["turn_exact"] += m["turn_exact"] * len(g)
            totals["tokens"] += m["tokens"]
            totals["verdict_right"] += m.get("verdict_acc", 0.0) * m.get("verdicts", 0.0)
            totals["verdicts"] += m.get("verdicts", 0.0)
            rows += len(g)
    model.train()
    figures = {
        "dev_loss": totals["loss"] / totals["tokens"],
        "dev_token_acc": totals["token_acc"] / totals["tokens"],
        "dev_turn_exact": totals["turn_exact"] / rows,
    }
    if totals["verdicts"]:
        figures["dev_verdict_acc"] = totals["verdict_right"] / totals["verdicts"]
    return figures


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


COPY_STAGE_STEPS = 10_000_000  # stage 0 draws copy batches from here on (even: keeps ``both``'s parity)

ProgressFactory = Callable[[int, int], Any]  # (total, initial) -> a tqdm-like object


def _saved(folder: Path) -> bool:
    """Whether ``folder`` holds a saved model: whole weights, or an adapter."""
    return (folder / "config.json").exists() or has_adapter(folder)


class SFTRun:
    """One supervised training run in ``config.out_dir``: data, model, training, checkpoints."""

    def __init__(self, config: SFTConfig, progress: ProgressFactory | None = None) -> None:
        self.config = config
        self.out = Path(config.out_dir)
        self.progress = progress
        self.history: list[dict[str, float]] = []
        # Stage 0's progress (train.copy_task.pretrain_*): steps done, whether it is over,
        # whether copying formed, and (while it runs) its optimiser and recent accuracies.
        self.copy_state: dict[str, Any] = {"steps": 0, "done": False, "formed": False}
        self.commit = git_commit()  # the code the run starts with (HEAD may move while it trains)
        self.changes = git_changes()  # and how the tree differed from that commit then

    # -- data -----------------------------------------------------------------------------

    def conversations(self, seeds: Sequence[int], split: str | None = None) -> list[Conversation]:
        from parlswarm.world.factbook import Factbook

        real = Factbook.load()
        data = self.config.data if split is None else self.config.data.model_copy(update={"split": split})
        out: list[Conversation] = []
        for seed in seeds:
            t0 = time.perf_counter()
            out.extend(record_traces(seed, data, real))
            log.info("world seed %d: %d conversations so far (%.1fs)", seed, len(out), time.perf_counter() - t0)
        return out

    def tokenizer_corpus(self, conversations: Sequence[Conversation]) -> Iterator[str]:
        from parlswarm.world.factbook import Factbook
        from parlswarm.world.world import World

        seed = self.config.data.world_seeds[0] if self.config.data.world_seeds else 1
        docs = list(World.load(seed, base=Factbook.load()).docs.values())[: self.config.tokenizer_pages]
        for doc in docs:
            yield doc.text
        # Rendered traces, so that the chat markers, tool-call JSON and notes get good merges.
        from jinja2 import Template

        from parlswarm.models.chat_format import NANO_CHAT_TEMPLATE, chat_dicts

        template = Template(NANO_CHAT_TEMPLATE)
        for conv in conversations[:400]:
            dicts = chat_dicts(conv.messages, conv.tools, self.config.settings.tool_format, "tool", None)
            yield template.render(messages=dicts, add_generation_prompt=False)

    # -- model ----------------------------------------------------------------------------

    def build(self, conversations: Sequence[Conversation]) -> LocalModel:
        """A new nano model (tokenizer trained here) or the ``init`` model, as a LocalModel."""
        cfg = self.config
        if cfg.init is not None:
            if cfg.train.lora is not None and has_adapter(cfg.init):
                saved = json.loads((Path(cfg.init) / ADAPTER_CONFIG).read_text(encoding="utf-8"))
                if (saved.get("r"), saved.get("lora_alpha")) != (cfg.train.lora.r, cfg.train.lora.alpha):
                    raise ValueError(
                        f"init {cfg.init} holds an adapter of r={saved.get('r')}, alpha={saved.get('lora_alpha')}: "
                        "train.lora must match it to go on training it"
                    )
                return self.load(Path(cfg.init))  # go on training init's own adapter
            if has_adapter(cfg.init):
                # Merged and trained whole, it could not be saved when its base is a GGUF file.
                raise ValueError(f"init {cfg.init} is a LoRA adapter: go on training it with train.lora")
            lm = load_local(str(cfg.init))
            lm.settings = self.settings()
            if cfg.deepen_to is not None:
                lm.model = deepen(lm.model, cfg.deepen_to)
            if cfg.train.lora is not None:
                lm.model = add_adapter(lm.model, cfg.train.lora)
            return lm
        arch = NanoConfig.load(cfg.architecture)
        if cfg.vocab_size is not None:
            arch = arch.model_copy(update={"vocab_size": cfg.vocab_size})
        tokenizer = train_tokenizer(self.tokenizer_corpus(conversations), arch.vocab_size, arch.separate_spaces)
        model = build_model(arch, tokenizer, seed=cfg.train.seed)
        return LocalModel(model, tokenizer, name="nano", settings=cfg.settings)

    def check_depth(self) -> None:
        """Refuse a ``deepen_to`` that init's depth cannot reach (see :func:`expansion_points`)."""
        cfg = self.config
        config = local_path(str(cfg.init)) / "config.json"
        if cfg.deepen_to is not None and config.is_file():
            layers = json.loads(config.read_text(encoding="utf-8"))["num_hidden_layers"]
            try:
                expansion_points(layers, cfg.deepen_to)
            except ValueError as exc:
                raise ValueError(f"deepen_to {cfg.deepen_to} for init {cfg.init}: {exc}") from None

    def base(self) -> str:
        """Under LoRA, the model the adapter applies to: ``init``, or init's own base when init is an adapter."""
        init = str(self.config.init)
        if not has_adapter(init):
            return init
        saved = LocalSettings.model_validate_json((Path(init) / SETTINGS_FILE).read_text(encoding="utf-8"))
        if saved.base is None:
            raise ValueError(f"init {init} holds an adapter but its {SETTINGS_FILE} names no base model")
        return saved.base

    def settings(self) -> LocalSettings:
        """How the trained model is run; an adapter's settings name the model it applies to."""
        cfg = self.config
        settings = cfg.settings.model_copy(update={"check_tool": cfg.data.check_tool})  # its notes ask the tool
        if cfg.train.lora is None:
            return settings
        base = self.base()
        return settings.model_copy(update={"base": base, "base_digest": weights_digest(base)})

    def load(self, folder: Path) -> LocalModel:
        """A model this run saved (a checkpoint, or the model before step 1), ready to train on."""
        cfg = self.config
        if cfg.train.lora is None:
            lm = LocalModel.from_pretrained(folder, name="nano")
        else:
            lm = load_local(self.base())
            lm.model = load_adapter(lm.model, folder, trainable=True)
        lm.settings = self.settings()
        return lm

    # -- checkpoints ----------------------------------------------------------------------

    def save(self, lm: LocalModel, folder: Path, extra: dict[str, Any] | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        lm.model.save_pretrained(folder)
        lm.tokenizer.save_pretrained(folder)
        write_settings(folder, lm.settings)
        if extra is not None:
            (folder / "manifest.json").write_text(json.dumps(extra, indent=2) + "\n", encoding="utf-8")

    def _checkpoint(self, lm: LocalModel, optimizer: torch.optim.Optimizer, step: int, rng: random.Random) -> None:
        folder = self.out / "checkpoint"
        tmp = self.out / "checkpoint.tmp"
        self.save(lm, tmp)
        torch.save(
            {
                "step": step,
                "optimizer": optimizer.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "rng": rng.getstate(),
                "history": self.history,
                "copy": self.copy_state,
            },
            tmp / "trainer_state.pt",
        )
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)

    # -- the run --------------------------------------------------------------------------

    def prepare(self) -> tuple[LocalModel, Dataset]:
        """Traces, model and samples; cached in ``out_dir`` so a resumed run reuses them."""
        cfg = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        data_file = self.out / "data.pt"
        resume = self.out / "checkpoint"
        start = resume if _saved(resume) else self.out / "initial"
        if not data_file.exists() and cfg.data_from is not None:
            self.copy_data(cfg.data_from)
        if data_file.exists() and _saved(start):
            # Samples and the model they were encoded for (a checkpoint, or the model before step 1).
            lm = self.load(start)
            blob = torch.load(data_file, weights_only=False)
            return lm, Dataset([Sample(**s) for s in blob["train"]], [Sample(**s) for s in blob["dev"]], blob["stats"])
        self.check_depth()  # before minutes of traces, not after
        t0 = time.perf_counter()
        conversations = self.conversations(cfg.data.world_seeds)
        dev_conversations = (
            self.conversations([cfg.data.dev_world_seed], cfg.data.dev_split) if cfg.data.dev_samples else []
        )
        trace_seconds = time.perf_counter() - t0
        if cfg.init:
            log.info("loading %s", cfg.init)
        else:
            log.info("building the model (and training its tokenizer)")
        # Hashed when the weights are read: a folder such as weights/NAME may hold others by the time the run ships.
        init_digest = weights_digest(str(cfg.init)) if cfg.init else None
        lm = self.build(conversations)
        log.info("%s: %.2f M parameters; encoding samples", lm.name, parameter_count(lm.model) / 1e6)
        rng = random.Random(cfg.train.seed)
        train, stats = draw_samples(lm, conversations, sample_counts(cfg.data), cfg.data.max_tokens, rng)
        if init_digest:
            stats["init_digest"] = init_digest
        stats["recipe_digest"] = self.recipe_digest(init_digest)
        if cfg.data.on_policy is not None:
            relabelled, on_policy = self.on_policy_samples(lm, cfg.data.on_policy, rng)
            train += relabelled
            stats["on_policy"] = on_policy
        planned = (
            cfg.data.orchestrator_samples + cfg.data.subagent_samples
            + (cfg.data.delegated_samples or 0) + (cfg.data.answer_samples or 0) + (cfg.data.start_samples or 0)
            + (cfg.data.verdict_samples or 0)
        )
        dev_counts = sample_counts(cfg.data, cfg.data.dev_samples / max(1, planned))
        dev, _ = draw_samples(lm, dev_conversations, dev_counts, cfg.data.max_tokens, rng) if dev_conversations else ([], {})
        kinds: dict[str, int] = {}
        for s in train:
            kinds[s.kind] = kinds.get(s.kind, 0) + 1
        stats.update(
            conversations=len(conversations),
            trace_seconds=round(trace_seconds, 1),
            train_samples=len(train),
            train_tokens=sum(len(s) for s in train),
            trained_tokens=sum(sum(s.mask) for s in train),
            dev_samples=len(dev),
            train_kinds=kinds,
        )
        torch.save(
            {"train": [s.__dict__ for s in train], "dev": [s.__dict__ for s in dev], "stats": stats}, data_file
        )
        self._checkpoint_initial(lm)
        log.info("%d training samples (%d tokens), %d dev samples", len(train), stats["train_tokens"], len(dev))
        return lm, Dataset(train, dev, stats)

    def recipe_digest(self, init_digest: str | None) -> str:
        """sha256 of what the samples and the initial model follow from: the data section, the
        model they were encoded for (init and its weights, or the architecture and tokenizer
        settings of a new one), its run settings, LoRA and the seed of the draw."""
        cfg = self.config
        data = cfg.data.model_dump(mode="json")
        recipe = {
            # keys added since stop 66 only when set, so that runs drawn before them keep their digest
            "data": {k: v for k, v in data.items() if k not in LATER_DATA_KEYS or v != LATER_DATA_KEYS[k]},
            "init": None if cfg.init is None else str(cfg.init),  # a Path where set in code, not from YAML
            "init_digest": init_digest,
            "architecture": None if cfg.init else hashlib.sha256(Path(cfg.architecture).read_bytes()).hexdigest(),
            "vocab_size": cfg.vocab_size,
            "tokenizer_pages": cfg.tokenizer_pages,
            "deepen_to": cfg.deepen_to,
            "settings": cfg.settings.model_dump(mode="json", exclude={"check_tool"}),  # data.check_tool sets it
            "lora": cfg.train.lora.model_dump(mode="json") if cfg.train.lora else None,
            "seed": cfg.train.seed,
        }
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()

    def copy_data(self, source: Path) -> None:
        """Copy ``source``'s data.pt and initial/ into this run's folder, if it drew them by this run's recipe."""
        cfg = self.config
        blob_file = source / "data.pt"
        if not blob_file.is_file() or not _saved(source / "initial"):
            raise ValueError(f"data_from {source}: no data.pt and initial/ there (a run folder that has drawn its samples)")
        drawn = torch.load(blob_file, weights_only=False)["stats"].get("recipe_digest")
        if drawn is None:
            raise ValueError(f"data_from {source}: its data.pt records no recipe (drawn before stop 61), so it cannot be checked")
        wanted = self.recipe_digest(weights_digest(str(cfg.init)) if cfg.init else None)
        if drawn != wanted:
            raise ValueError(
                f"data_from {source}: its samples were drawn by another recipe (data section, init, settings, LoRA or "
                "seed differ from this config's); drop data_from to draw this config's own"
            )
        log.info("samples and initial model from %s (the same recipe)", source)
        shutil.copytree(source / "initial", self.out / "initial", dirs_exist_ok=True)
        shutil.copyfile(blob_file, self.out / "data.pt")  # last: data.pt beside initial/ marks the copy complete

    def on_policy_samples(self, lm: LocalModel, cfg: OnPolicyConfig, rng: random.Random) -> tuple[list[Sample], dict[str, Any]]:
        """``cfg.samples`` relabelled turns of the policy's own runs, drawn in proportion to their kinds."""
        from parlswarm.parl.relabel import relabelled_conversations

        policy = LocalModel.from_pretrained(cfg.policy)
        update: dict[str, Any] = {}
        if cfg.max_new_tokens is not None:
            update["max_new_tokens"] = cfg.max_new_tokens
        if cfg.temperature is not None:
            update["temperature"] = cfg.temperature
        policy.sampling = policy.sampling.model_copy(update=update)
        log.info("on-policy data: %s runs in world seeds %s, relabelled by the expert", cfg.policy, cfg.world_seeds)
        conversations, stats = relabelled_conversations(policy, self.config.data)
        pools = _turn_refs(conversations)
        total = sum(len(p) for p in pools.values())
        # Only the kinds the pools hold: an empty "delegated" or "answer" count would make
        # draw_samples split those turns off into a pool drawn zero times.
        counts: dict[SampleKind, int] = {k: round(cfg.samples * len(p) / total) for k, p in pools.items() if p}
        samples, drawn = draw_samples(lm, conversations, counts, self.config.data.max_tokens, rng)
        log.info(
            "on-policy data: %d states (the model's turn was the expert's in %.1f%%, its calls in %.1f%%, its answer "
            "cells in %.1f%%), %d samples",
            stats["states"], 100 * stats["agreement"], 100 * stats["call_agreement"], 100 * stats["cell_agreement"], len(samples),
        )
        return samples, {**stats, "samples": len(samples), "too_long": drawn["too_long"]}

    def _checkpoint_initial(self, lm: LocalModel) -> None:
        # The tokenizer must persist with the data it encoded, even before step 1.
        self.save(lm, self.out / "initial")

    def run(self) -> dict[str, Any]:
        """Train to ``train.steps`` (resuming from ``out_dir/checkpoint`` when present); returns the manifest."""
        cfg = self.config
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.train.seed)
        lm, data = self.prepare()
        if not data.train:
            raise ValueError("no training samples: check data.world_seeds, data.max_tokens and the sample counts")
        model = lm.model
        model.train()
        trained = trainable(model)
        optimizer = torch.optim.AdamW(trained, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
        rng = random.Random(cfg.train.seed)
        step = 0
        state_file = self.out / "checkpoint" / "trainer_state.pt"
        if state_file.exists():
            state = torch.load(state_file, weights_only=False)
            optimizer.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["torch_rng"])
            rng.setstate(state["rng"])
            step = state["step"]
            self.history = state["history"]
            self.copy_state = state.get("copy", self.copy_state)
            # Steps logged after the checkpoint will be trained again: the log restarts from it.
            with (self.out / "log.jsonl").open("w", encoding="utf-8") as f:
                f.writelines(json.dumps(h) + "\n" for h in self.history)
            log.info("resuming at step %d", step)
        stream = batches(data.train, cfg.train.batch_tokens, rng)  # after a resume: from the saved random state
        bar = self.progress(cfg.train.steps, step) if self.progress else None
        log_file = (self.out / "log.jsonl").open("a" if self.history else "w", encoding="utf-8")
        pad = lm.pad_id
        vocab = ordinary_tokens(lm.tokenizer)
        draw_copy = copy_sampler(lm.tokenizer, cfg.train.copy_task)
        draw_tool_word = tool_word_sampler(lm.tokenizer, cfg.train.tool_word_task) if cfg.train.tool_word_task.weight > 0 else None
        draw_next_place = next_place_sampler(lm.tokenizer, cfg.train.next_place_task) if cfg.train.next_place_task.weight > 0 else None
        draw_label = label_sampler(lm.tokenizer, cfg.train.label_task) if cfg.train.label_task.weight > 0 else None
        # With the check tool the verdict words are found in every batch: their accuracy is logged, their loss weighted.
        patterns = verdict_words(lm.tokenizer) if cfg.data.check_tool else []
        draw_compare = (
            compare_sampler(lm.tokenizer, cfg.train.compare_task, cfg.data.note_style, cfg.data.world_seeds)
            if cfg.train.compare_task.weight > 0
            else None
        )
        t0 = time.perf_counter()

        def out_of_time() -> bool:
            over = cfg.train.max_minutes is not None and time.perf_counter() - t0 > 60 * cfg.train.max_minutes
            if over:
                log.warning("stopping: train.max_minutes (%g) reached", cfg.train.max_minutes)
                self._checkpoint(lm, optimizer, step, rng)
            return over

        try:
            if cfg.train.copy_task.pretrain_steps and not self.copy_state["done"]:
                self._copy_stage(lm, draw_copy, log_file, out_of_time, lambda: self._checkpoint(lm, optimizer, step, rng))
            stage0_left = cfg.train.copy_task.pretrain_steps and not self.copy_state["done"]  # only when time ran out
            while step < cfg.train.steps and not stage0_left:
                if out_of_time():
                    break
                group = next(stream)
                for g in optimizer.param_groups:
                    g["lr"] = lr_at(step, cfg.train)
                ids, attention, target = collate(group, pad)
                inputs = noised(ids, target, cfg.train.input_noise, vocab) if cfg.train.input_noise else None
                verdicts = verdict_positions(ids, target, patterns) if patterns else None
                loss, metrics = masked_loss(model, ids, attention, target, inputs, verdicts, cfg.train.verdict_weight)
                if cfg.train.copy_task.weight > 0:
                    aux, aux_metrics = copy_loss(model, *draw_copy(step, cfg.train.seed))
                    loss = loss + cfg.train.copy_task.weight * aux
                    metrics.update(aux_metrics)
                if draw_compare is not None:
                    aux, aux_metrics = copy_loss(model, *draw_compare(step, cfg.train.seed), name="compare")
                    loss = loss + cfg.train.compare_task.weight * aux
                    metrics.update(aux_metrics)
                if draw_tool_word is not None:
                    aux, aux_metrics = copy_loss(model, *draw_tool_word(step, cfg.train.seed), name="tool_word")
                    loss = loss + cfg.train.tool_word_task.weight * aux
                    metrics.update(aux_metrics)
                if draw_next_place is not None:
                    aux, aux_metrics = copy_loss(model, *draw_next_place(step, cfg.train.seed), name="next_place")
                    loss = loss + cfg.train.next_place_task.weight * aux
                    metrics.update(aux_metrics)
                if draw_label is not None:
                    aux, aux_metrics = copy_loss(model, *draw_label(step, cfg.train.seed), name="label")
                    loss = loss + cfg.train.label_task.weight * aux
                    metrics.update(aux_metrics)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trained, cfg.train.grad_clip)
                optimizer.step()
                step += 1
                record: dict[str, float] = {"step": step, "lr": lr_at(step - 1, cfg.train), **metrics}
                if step % cfg.train.eval_every == 0 or step == cfg.train.steps:
                    record.update(evaluate(model, data.dev, pad, cfg.train.batch_tokens, patterns))
                record["seconds"] = round(time.perf_counter() - t0, 1)
                self.history.append(record)
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
                if bar is not None:
                    shown = {k: f"{v:.3f}" for k, v in record.items() if k in ("loss", "dev_loss", "dev_turn_exact")}
                    bar.set_postfix(shown)
                    bar.update(1)
                if step % cfg.train.save_every == 0 or step == cfg.train.steps:
                    self._checkpoint(lm, optimizer, step, rng)
        finally:
            log_file.close()
            if bar is not None:
                bar.close()
        manifest = self.manifest(lm, data)
        self.save(lm, self.out / "final", manifest)
        return manifest

    def _copy_stage(
        self,
        lm: LocalModel,
        draw_copy: CopySampler,
        log_file: Any,
        out_of_time: Callable[[], bool],
        checkpoint: Callable[[], None],
    ) -> None:
        """Stage 0: copy-task-only steps until copying forms or ``pretrain_steps`` run out.

        Its own optimiser and learning rate (the SFT stage starts fresh after it); batches are
        drawn from their own range of steps, so stage 0 and the mixed-in task never repeat
        each other. Leaves ``copy_state["done"]`` False only when time ran out.
        """
        train = self.config.train
        task = train.copy_task
        state = self.copy_state
        model = lm.model
        optimizer = torch.optim.AdamW(model.parameters(), lr=task.pretrain_lr, weight_decay=train.weight_decay)
        if state.get("optimizer"):
            optimizer.load_state_dict(state["optimizer"])
        recent: dict[str, list[float]] = state.setdefault("recent", {})
        kinds = {"repeat", "recall"} if task.kind == "both" else {task.kind}
        t0 = time.perf_counter()
        while state["steps"] < task.pretrain_steps:
            if out_of_time():
                return
            i = state["steps"]
            drawn = COPY_STAGE_STEPS + i
            lr = task.pretrain_lr * min(1.0, (i + 1) / max(1, train.warmup))
            for g in optimizer.param_groups:
                g["lr"] = lr
            loss, metrics = copy_loss(model, *draw_copy(drawn, train.seed))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
            optimizer.step()
            state["steps"] = i + 1
            kind = task.kind_at(drawn)
            recent[kind] = (recent.get(kind, []) + [metrics["copy_acc"]])[-task.pretrain_window :]
            record: dict[str, Any] = {"copy_step": i + 1, "lr": lr, "copy_kind": kind, **metrics}
            record["seconds"] = round(time.perf_counter() - t0, 1)
            self.history.append(record)
            log_file.write(json.dumps(record) + "\n")
            means = {k: sum(v) / len(v) for k, v in recent.items()}
            if (i + 1) % 50 == 0:
                shown = ", ".join(f"{k} {m:.3f}" for k, m in sorted(means.items()))
                log.info("copy stage %d/%d: accuracy %s (%.0fs)", i + 1, task.pretrain_steps, shown, record["seconds"])
            state["formed"] = task.pretrain_until is not None and all(
                len(recent.get(k, [])) == task.pretrain_window and means[k] >= task.pretrain_until for k in kinds
            )
            if state["formed"]:
                log.info("copying formed at copy step %d: ending stage 0", i + 1)
                break
            if (i + 1) % train.save_every == 0:
                state["optimizer"] = optimizer.state_dict()
                log_file.flush()
                checkpoint()
        state["done"] = True
        state.pop("optimizer", None)
        log_file.flush()
        checkpoint()
        # Kept apart: another SFT stage can start from it (``init``) without repeating stage 0.
        self.save(lm, self.out / "stage0", {k: v for k, v in state.items() if k != "recent"})

    def manifest(self, lm: LocalModel, data: Dataset) -> dict[str, Any]:
        last_eval = next((h for h in reversed(self.history) if "dev_loss" in h), {})
        steps = [h for h in self.history if "step" in h]
        copy = {k: v for k, v in self.copy_state.items() if k in ("steps", "formed")}
        if self.copy_state.get("recent"):
            copy["accuracy"] = {k: round(sum(v) / len(v), 4) for k, v in self.copy_state["recent"].items()}
        lora = self.config.train.lora
        return {
            "model": f"LoRA adapter (r={lora.r}) on {self.base()}" if lora else "parlswarm nano (LlamaForCausalLM)",
            "parameters": parameter_count(lm.model),
            "trained_parameters": sum(p.numel() for p in trainable(lm.model)),
            "config": self.config.model_dump(mode="json"),
            # sha256 of init's weights files when the run read them (see models.local_specs.weights_digest).
            "init_digest": data.stats.get("init_digest"),
            "data": {k: v for k, v in data.stats.items() if k != "init_digest"},
            "git_commit": self.commit,
            "git_changes": self.changes,
            "steps": int(steps[-1]["step"]) if steps else 0,
            "copy_stage": copy,
            "final_train_loss": steps[-1]["loss"] if steps else None,
            "dev": last_eval,
        }


__all__ = [
    "Dataset",
    "SFTRun",
    "Sample",
    "SampleKind",
    "batches",
    "collate",
    "draw_samples",
    "encode_turn",
    "evaluate",
    "lr_at",
    "masked_loss",
    "noised",
    "sample_counts",
]
