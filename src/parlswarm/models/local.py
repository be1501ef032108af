"""A local Hugging Face causal LM behind the :class:`~parlswarm.models.base.Model` protocol.

The prompt format and the tool-call protocol are :mod:`parlswarm.models.chat_format`'s; the
settings saved beside the weights :mod:`parlswarm.models.local_settings`'s; where a ``--model``
spec's weights live :mod:`parlswarm.models.local_specs`'s.

Batched decoding
    Requests that arrive together (the sub-agents of one spawning step reach the model in
    the same event-loop turn) are collected by a micro-batcher and decoded as one
    left-padded batch with a KV cache, in a worker thread so the event loop keeps running.
    While a batch decodes, new requests queue up and form the next batch.

Prefix reuse
    The keys and values of every decoded sequence are kept (:mod:`parlswarm.models.prefix_cache`,
    ``prefix_cache_bytes``); a prompt that starts with tokens already decoded, as an agent's
    next turn does, prefills only the rest. Each row of a batch reuses its own prefix: the
    reused keys and values are left-padded to the longest one, the new tokens to the longest
    suffix, and the attention mask hides the padding in between.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import logging
import os
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from parlswarm.models.adapter import has_adapter, load_adapter
from parlswarm.models.base import ModelError, ModelSpecError
from parlswarm.models.chat_format import (
    END_OF_TURN,
    NANO_CHAT_TEMPLATE,
    TOOL_CALL_OPEN,
    ToolFormat,
    chat_dicts,
    parse_reply,
)
from parlswarm.models.local_settings import SETTINGS_FILE, LocalSettings, Sampling, read_settings
from parlswarm.models.local_specs import check_base, has_tokenizer, local_path
from parlswarm.models.prefix_cache import LayerKV, PrefixCache, PrefixEntry
from parlswarm.types import (
    AssistantMessage,
    Message,
    ModelResponse,
    ToolChoice,
    ToolSpec,
    Usage,
)

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# The model.


@dataclass
class Generation:
    """What one completion decoded: for listeners such as PARL rollouts (exact token ids)."""

    prompt_ids: list[int]
    output_ids: list[int]
    text: str


@dataclass
class _Request:
    prompt_ids: list[int]
    future: asyncio.Future[Generation]
    banned: tuple[int, ...] = ()  # token ids this request may not decode


@dataclass
class _Row:
    """One request decoding in a continuous batch."""

    request: _Request
    budget: int  # tokens it may generate
    draws: torch.Generator | None  # its own sampling stream (None: greedy)
    output: list[int] = field(default_factory=list)
    done: bool = False


@dataclass
class _Running:
    """The rows a continuous batch is decoding: their shared key-value cache (left-padded), and
    per row its attention mask, the token to feed next and that token's position."""

    rows: list[_Row] = field(default_factory=list)
    cache: Any = None
    attention: torch.Tensor = field(default_factory=lambda: torch.zeros((0, 0), dtype=torch.long))
    next_ids: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    next_pos: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))


@dataclass
class _LoopQueue:
    """Requests waiting on one event loop, and the task that drains them."""

    pending: list[_Request] = field(default_factory=list)
    drainer: asyncio.Task[None] | None = None


@dataclass
class BatchStats:
    """Counters of the micro-batcher (for benchmarks and tests)."""

    batches: int = 0
    requests: int = 0
    generated_tokens: int = 0
    largest_batch: int = 0
    seconds: float = 0.0
    prompt_tokens: int = 0
    reused_tokens: int = 0  # prompt tokens whose keys and values came from the prefix cache
    overflow_folds: int = 0  # prompts that filled the context and were folded (LocalSettings.fold_on_overflow)


DEFAULT_PREFIX_CACHE_BYTES = 2 * 2**30


DEVICE_ENV = "PARLSWARM_DEVICE"


def torch_device(name: str | torch.device | None = None) -> torch.device:
    """Where local models run: ``name``, else ``$PARLSWARM_DEVICE``, else ``auto`` (CUDA when present, else the CPU)."""
    if isinstance(name, torch.device):
        return name
    raw = (name or os.environ.get(DEVICE_ENV) or "auto").strip()
    if raw == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(raw)
    except RuntimeError:
        raise ModelSpecError(f"{DEVICE_ENV}={raw!r} is not a torch device (auto, cpu, cuda, cuda:1, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelSpecError(f"{DEVICE_ENV}={raw!r} asks for CUDA but this torch build sees no GPU (torch {torch.__version__})")
    return device


def module_device(model: torch.nn.Module) -> torch.device:
    """The device of a module's weights (the first parameter's: parlswarm keeps a model on one device)."""
    return next(model.parameters()).device


class LocalModel:
    """A Hugging Face causal LM (``transformers``) as a parlswarm :class:`Model`.

    Build it from a folder or GGUF file with :meth:`from_pretrained`, or from a loaded model
    and tokenizer. ``max_batch_size=1`` turns batching off (each request decodes alone).
    ``prefix_cache_bytes`` bounds the keys and values kept for prefix reuse, on the model's
    device (SmolLM2-135M: 45 KiB a token); 0 turns reuse off. ``continuous=True`` lets a
    request join the rows already decoding at the next token, and hands each row back as soon
    as it ends, instead of forming the next batch once the whole current one has ended.
    """

    round_prompt_cap = 65_536  # distinct prompts remembered per sampling round (about 100 bytes each)

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str = "local",
        settings: LocalSettings | None = None,
        max_batch_size: int = 64,
        batch_window: float = 0.0,
        device: str | torch.device | None = None,
        prefix_cache_bytes: int = DEFAULT_PREFIX_CACHE_BYTES,
        continuous: bool = False,
    ) -> None:
        # Weights move once, here; prompts go to them and logits come back to the CPU for sampling.
        self.model = model.to(torch_device(device)).eval()
        self.tokenizer = tokenizer
        self.name = name
        self.settings = settings or LocalSettings()
        self.sampling = self.settings.sampling
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self.max_batch_size = max_batch_size
        self.batch_window = batch_window
        self.continuous = continuous
        self.chat_template: str = getattr(tokenizer, "chat_template", None) or NANO_CHAT_TEMPLATE
        config = getattr(model, "config", None)
        self.max_context = self.settings.max_context or getattr(config, "max_position_embeddings", None) or 4096
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.pad_id: int = int(tokenizer.pad_token_id)
        self.stop_ids = self._stop_ids()
        self.listeners: list[Callable[[Generation], None]] = []
        self.stats = BatchStats()
        self.prefix_cache = PrefixCache(prefix_cache_bytes)
        self._weights_state: tuple[tuple[int, int], ...] = ()
        self._queues: dict[asyncio.AbstractEventLoop, _LoopQueue] = {}
        self._torch_lock = threading.Lock()  # one decode at a time, whatever the event loop
        self._generator = torch.Generator(device="cpu")  # unseeded sampling: one stream for all
        self.sampling_round = 0
        self._prompts_drawn: Counter[bytes] = Counter()
        self._round_part = 0  # bumped when a round's prompt table fills (a long-lived server)
        self._tool_role = "tool"
        self._calls = 0
        # transformers renamed `past_key_values` to `cache` (5.x); only the last position's logits are needed.
        # (An adapter-wrapped model passes its keywords through to the model it wraps.)
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        forward_params = inspect.signature(inner.forward).parameters
        self._cache_arg = "cache" if "cache" in forward_params else "past_key_values"
        keep = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in forward_params), None)
        self._keep_last: dict[str, int] = {keep: 1} if keep else {}

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        gguf_file: str | None = None,
        name: str | None = None,
        sampling: Sampling | None = None,
        tool_format: ToolFormat | None = None,
        **kwargs: Any,
    ) -> LocalModel:
        """Load a ``save_pretrained`` folder (or a GGUF file inside ``path``) on the CPU in float32."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(path)
        if not path.exists():
            raise ModelSpecError(f"local model not found: {path}")
        settings = LocalSettings()
        settings_file = path / SETTINGS_FILE
        if gguf_file is None and settings_file.is_file():
            try:
                settings = LocalSettings.model_validate_json(settings_file.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise ModelSpecError(f"{settings_file}: invalid settings: {exc}") from None
        if sampling is not None:
            settings = settings.model_copy(update={"sampling": sampling})
        if tool_format is not None:
            settings = settings.model_copy(update={"tool_format": tool_format})
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        adapter = gguf_file is None and has_adapter(path)
        if adapter and not settings.base:
            raise ModelSpecError(f"{path} holds a LoRA adapter but {SETTINGS_FILE} names no 'base' model for it")
        if adapter:
            check_base(path, settings)
        try:
            if adapter:
                base = load_local(settings.base)
                model = load_adapter(base.model, path)
                # A shipped adapter leaves its base's tokenizer out (3.5 MB for SmolLM2).
                tokenizer = AutoTokenizer.from_pretrained(str(path)) if has_tokenizer(path) else base.tokenizer
            else:
                tokenizer = AutoTokenizer.from_pretrained(str(path), **extra)
                model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32, **extra)
        except (OSError, ValueError) as exc:
            raise ModelSpecError(f"cannot load local model from {path}{f' ({gguf_file})' if gguf_file else ''}: {exc}") from None
        # Left padding: every row of a batch ends where generation starts.
        tokenizer.padding_side = "left"
        label = name or (f"hf-gguf:{gguf_file}" if gguf_file else f"hf:{path.name}")
        return cls(model, tokenizer, name=label, settings=settings, **kwargs)

    def _stop_ids(self) -> set[int]:
        ids: set[int] = set()
        config_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        for value in (config_eos, self.tokenizer.eos_token_id):
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, (list, tuple)):
                ids.update(int(v) for v in value)
        vocab = self.tokenizer.get_vocab()
        ids.update(vocab[t] for t in END_OF_TURN if t in vocab)
        return ids

    # -- prompts ----------------------------------------------------------------------------

    def render(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        add_generation_prompt: bool = True,
        fold: bool = True,
        fold_calls: bool = False,
    ) -> str:
        """The prompt text the model sees for ``messages`` with ``tools`` on offer; ``fold_calls``
        folds the turns before the latest to their notes whatever the settings say."""
        from jinja2 import TemplateError

        fmt = self.settings.tool_format
        keep = self.settings.keep_tool_results if fold else None
        calls = fold and self.settings.fold_tool_calls
        if fold_calls:
            keep, calls = keep or 1, True
        try:
            dicts = chat_dicts(messages, tools, fmt, self._tool_role, keep, calls)
            return self._apply_template(dicts, add_generation_prompt)
        except TemplateError:
            if self._tool_role == "user":
                raise
            # This template rejects the tool role: send tool results as user turns from now on.
            log.info("%s: chat template rejects role 'tool'; tool results go in user turns", self.name)
            self._tool_role = "user"
            return self._apply_template(chat_dicts(messages, tools, fmt, "user", keep, calls), add_generation_prompt)

    def _apply_template(self, dicts: list[dict[str, str]], add_generation_prompt: bool) -> str:
        return str(
            self.tokenizer.apply_chat_template(
                dicts, chat_template=self.chat_template, tokenize=False, add_generation_prompt=add_generation_prompt
            )
        )

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_conversation(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> tuple[list[int], list[bool]]:
        """Token ids of a whole conversation and, per token, whether the assistant wrote it.

        The assistant's span of each turn is found by rendering the conversation up to that
        turn with and without it (chat templates render prefixes consistently); the marks
        cover the turn's text and its end-of-turn token, not the role header.
        """
        full = self.render(messages, tools, add_generation_prompt=False, fold=False)
        spans: list[tuple[int, int]] = []
        for i, m in enumerate(messages):
            if m.role != "assistant":
                continue
            before = self.render(messages[:i], tools, add_generation_prompt=True, fold=False)
            upto = self.render(messages[: i + 1], tools, add_generation_prompt=False, fold=False)
            if not full.startswith(upto) or not upto.startswith(before):
                raise ValueError(f"{self.name}: chat template does not render conversation prefixes consistently")
            spans.append((len(before), len(upto)))
        encoded = self.tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(encoded["input_ids"])
        mask = []
        for start, end in encoded["offset_mapping"]:
            mask.append(any(s <= start and end <= e and end > start for s, e in spans))
        return ids, mask

    def training_samples(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> list[tuple[list[int], list[bool]]]:
        """``(ids, assistant mask)`` sequences that teach this model the conversation's assistant turns.

        Without context folding that is the whole conversation in one sequence. With folding
        every assistant turn saw a different rendering of the past, so each turn becomes its
        own sequence: the prompt exactly as :meth:`complete` would render it, then the turn.
        """
        if self.settings.keep_tool_results is None:
            return [self.encode_conversation(messages, tools)]
        return [self.folded_turn_sample(messages[: i + 1], tools) for i, m in enumerate(messages) if m.role == "assistant"]

    def folded_turn_sample(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> tuple[list[int], list[bool]]:
        """With context folding: the sample of the conversation's last turn (an assistant turn),
        its prompt folded as :meth:`complete` renders it, then the turn whole."""
        i = len(messages) - 1
        prompt = self.render(messages[:i], tools, add_generation_prompt=True)
        before = self.render(messages[:i], tools, add_generation_prompt=True, fold=False)
        upto = self.render(messages, tools, add_generation_prompt=False, fold=False)
        if not upto.startswith(before):
            raise ValueError(f"{self.name}: chat template does not render conversation prefixes consistently")
        encoded = self.tokenizer(prompt + upto[len(before) :], add_special_tokens=False, return_offsets_mapping=True)
        ids = list(encoded["input_ids"])
        mask = [start >= len(prompt) and end > start for start, end in encoded["offset_mapping"]]
        return ids, mask

    # -- the Model protocol ---------------------------------------------------------------

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        response, _ = await self.complete_with_generation(messages, tools, tool_choice=tool_choice)
        return response

    async def complete_with_generation(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> tuple[ModelResponse, Generation]:
        """The reply and the exact token ids behind it (PARL trains on those).

        With ``tool_choice="none"`` the token that opens a tool call is never decoded, so the
        turn is the text the model writes instead; a tokenizer that spells the opening over
        several tokens cannot be held back that way, and any call it writes is dropped from
        the reply (its text stands).
        """
        prompt_ids = self.prompt_ids(messages, tools)
        text_only = tool_choice == "none"
        generation = await self.generate_ids(prompt_ids, banned=self._call_open_ids if text_only else ())
        return self._reply(generation, drop_calls=text_only)

    @functools.cached_property
    def _call_open_ids(self) -> tuple[int, ...]:
        """The token that opens a tool call in the text protocol, when it is one token."""
        ids = self.encode(TOOL_CALL_OPEN)
        return tuple(ids) if len(ids) == 1 else ()

    def replay_with_generation(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], output_of: Callable[[list[int]], list[int]]
    ) -> tuple[ModelResponse, Generation]:
        """The reply :meth:`complete_with_generation` would give had it decoded the token ids
        ``output_of(prompt_ids)`` returns: a turn written before (a PARL step gone through
        again), read back without decoding."""
        prompt_ids = self.prompt_ids(messages, tools)
        return self._reply(self._generation(prompt_ids, output_of(prompt_ids)))

    def prompt_ids(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> list[int]:
        """The prompt's token ids; one that fills the context is folded first when the settings
        allow (``fold_on_overflow``), and fails in the batcher if it still does not fit."""
        ids = self.encode(self.render(messages, tools))
        if len(ids) < self.max_context or not self.settings.fold_on_overflow:
            return ids
        folded = self.encode(self.render(messages, tools, fold_calls=True))
        if len(folded) < len(ids):
            self.stats.overflow_folds += 1
            log.info(
                "%s: prompt of %d tokens fills the context of %d; older turns folded to their notes: %d tokens",
                self.name, len(ids), self.max_context, len(folded),
            )
            return folded
        return ids

    def _reply(self, generation: Generation, drop_calls: bool = False) -> tuple[ModelResponse, Generation]:
        self._calls += 1
        message = parse_reply(generation.text, call_prefix=f"call_{self._calls}")
        if drop_calls and message.tool_calls:
            message = AssistantMessage(content=message.content or "")
        response = ModelResponse(
            message=message,
            usage=Usage(prompt_tokens=len(generation.prompt_ids), completion_tokens=len(generation.output_ids)),
            model=self.name,
            finish_reason="tool_calls" if message.tool_calls else "stop",
        )
        return response, generation

    def _generation(self, prompt_ids: list[int], output_ids: list[int]) -> Generation:
        """A finished decode: its text is the output without the stop token that ended it."""
        body = output_ids[:-1] if output_ids and output_ids[-1] in self.stop_ids else output_ids
        return Generation(prompt_ids=prompt_ids, output_ids=output_ids,
                          text=self.tokenizer.decode(body, skip_special_tokens=False))

    async def generate_ids(self, prompt_ids: list[int], banned: tuple[int, ...] = ()) -> Generation:
        """Queue one prompt for the next batch and wait for its generation (never decoding ``banned``)."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            # Forget queues of event loops that have closed (one per asyncio.run).
            self._queues = {lp: q for lp, q in self._queues.items() if not lp.is_closed()}
            queue = self._queues[loop] = _LoopQueue()
        request = _Request(prompt_ids, loop.create_future(), banned)
        queue.pending.append(request)
        if queue.drainer is None or queue.drainer.done():
            queue.drainer = loop.create_task(self._drain_continuous(queue) if self.continuous else self._drain(queue))
        return await request.future

    async def _settle(self, window: bool = True) -> None:
        """Let every request made in this event-loop turn (sibling sub-agents) join the batch."""
        if window and self.batch_window > 0:
            await asyncio.sleep(self.batch_window)
        else:
            for _ in range(3):
                await asyncio.sleep(0)

    def _take(self, queue: _LoopQueue, room: int) -> list[_Request]:
        """Up to ``room`` waiting requests; an overlong prompt fails its own caller, not its batch-mates."""
        taken = [r for r in queue.pending[:room] if not r.future.done()]
        del queue.pending[:room]
        for r in taken:
            if len(r.prompt_ids) >= self.max_context:
                r.future.set_exception(self._overflow(len(r.prompt_ids)))
        return [r for r in taken if not r.future.done()]

    def _deliver(self, request: _Request, generation: Generation) -> None:
        if not request.future.done():
            request.future.set_result(generation)
        for listener in self.listeners:
            listener(generation)

    def _failed(self, exc: Exception, requests: Sequence[_Request]) -> None:
        """A failed decode fails its callers, not the batcher."""
        log.debug("%s: batch decode failed", self.name, exc_info=True)
        error = exc if isinstance(exc, ModelError) else ModelError(f"model {self.name}: {type(exc).__name__}: {exc}")
        for r in requests:
            if not r.future.done():
                r.future.set_exception(error)

    async def _drain(self, queue: _LoopQueue) -> None:
        while queue.pending:
            await self._settle()
            batch = self._take(queue, self.max_batch_size)
            if not batch:
                continue
            try:
                generations = await asyncio.to_thread(self._generate_batch, [r.prompt_ids for r in batch], [r.banned for r in batch])
            except Exception as exc:
                self._failed(exc, batch)
                continue
            for r, g in zip(batch, generations):
                self._deliver(r, g)

    async def _drain_continuous(self, queue: _LoopQueue) -> None:
        """Decode token by token; between tokens, rows that ended go back and waiting requests join."""
        running = _Running()
        while queue.pending or running.rows:
            await self._settle(window=not running.rows)
            for row in running.rows:  # a caller that went away (cancelled) stops its row
                row.done = row.done or row.request.future.done()
            admitted = self._take(queue, self.max_batch_size - sum(not row.done for row in running.rows))
            try:
                finished = await asyncio.to_thread(self._advance, running, admitted)
            except Exception as exc:
                self._failed(exc, [*admitted, *(row.request for row in running.rows)])
                running = _Running()
                continue
            for row, generation in finished:
                self._deliver(row.request, generation)

    # -- decoding -------------------------------------------------------------------------

    def _generate_batch(self, prompts: list[list[int]], banned: Sequence[tuple[int, ...]] = ()) -> list[Generation]:
        """Decode ``prompts`` together: left padding, KV cache, one forward pass per token.

        Each row first takes what it can from the prefix cache; its prompt's remaining tokens
        (the suffix) are the first forward pass.
        """
        # Prompts over the context never get here: _drain fails them one by one.
        # Each row's own budget: a long batch-mate must not shorten the others' replies.
        budgets = torch.tensor([min(self.sampling.max_new_tokens, self.max_context - len(p)) for p in prompts])
        budget = int(budgets.max())
        n = len(prompts)
        stop = torch.tensor(sorted(self.stop_ids), dtype=torch.long)
        outputs: list[list[int]] = [[] for _ in range(n)]
        finished = torch.zeros(n, dtype=torch.bool)
        t0 = time.perf_counter()
        with self._torch_lock, torch.inference_mode():
            draws = [self._draws(p) for p in prompts]
            device = module_device(self.model)
            matches = self._prefix_matches(prompts)
            step_ids, step_pos, attention, cache = self._prefill_inputs(prompts, matches, device)
            for _ in range(budget):
                next_ids = self._pick(_ban(self._next_logits(step_ids, attention, step_pos, cache), banned), draws)
                next_ids = torch.where(finished, torch.full_like(next_ids, self.pad_id), next_ids)
                for i in (~finished).nonzero().flatten().tolist():
                    outputs[i].append(int(next_ids[i]))
                finished |= torch.isin(next_ids, stop)
                finished |= torch.tensor([len(o) for o in outputs]) >= budgets
                if bool(finished.all()):
                    break
                attention = torch.cat([attention, torch.ones((n, 1), dtype=torch.long)], dim=1)
                step_pos = step_pos[:, -1:] + 1
                step_ids = next_ids.unsqueeze(1)
            self._keep_prefixes(prompts, outputs, matches, cache, attention)
        seconds = time.perf_counter() - t0
        reused = [r for _, r in matches]
        generations = [self._generation(p, o) for p, o in zip(prompts, outputs)]
        self.stats.batches += 1
        self.stats.requests += n
        self.stats.generated_tokens += sum(len(o) for o in outputs)
        self.stats.largest_batch = max(self.stats.largest_batch, n)
        self.stats.seconds += seconds
        self.stats.prompt_tokens += sum(len(p) for p in prompts)
        self.stats.reused_tokens += sum(reused)
        return generations

    def _next_logits(self, ids: torch.Tensor, attention: torch.Tensor, positions: torch.Tensor, cache: Any) -> torch.Tensor:
        """One forward pass (the cache fills in place); each row's last logits, on the CPU, where
        the seeded CPU generator samples them: the same draws on any device."""
        device = module_device(self.model)
        out = self.model(
            input_ids=ids.to(device),
            attention_mask=attention.to(device),
            position_ids=positions.to(device),
            use_cache=True,
            **{self._cache_arg: cache},
            **self._keep_last,
        )
        return out.logits[:, -1, :].float().cpu()

    def _prefill_inputs(
        self, prompts: list[list[int]], matches: list[tuple[PrefixEntry | None, int]], device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any]:
        """Input ids, positions, attention mask and cache for the first forward pass of ``prompts``.

        Per row: [padding | reused prefix] in the cache, then [padding | suffix] as input.
        """
        reused = [r for _, r in matches]
        past = max(reused)
        width = max(len(p) - r for p, r in zip(prompts, reused))
        n = len(prompts)
        step_ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        step_pos = torch.zeros((n, width), dtype=torch.long)
        attention = torch.zeros((n, past + width), dtype=torch.long)
        for i, (p, r) in enumerate(zip(prompts, reused)):
            suffix = len(p) - r
            step_ids[i, width - suffix :] = torch.tensor(p[r:], dtype=torch.long)
            step_pos[i, width - suffix :] = torch.arange(r, len(p))
            attention[i, past - r : past] = 1
            attention[i, past + width - suffix :] = 1
        return step_ids, step_pos, attention, self._past_cache(matches, past, device)

    # -- continuous batching ----------------------------------------------------------------------

    def _advance(self, running: _Running, admitted: list[_Request]) -> list[tuple[_Row, Generation]]:
        """One move of a continuous batch: drop ended rows, then admit ``admitted`` (their prefill
        and first token) or, with none, decode one token for every row. Returns the rows that ended."""
        t0 = time.perf_counter()
        with self._torch_lock, torch.inference_mode():
            self._compact(running)
            if admitted:
                finished = self._admit(running, admitted)
            elif running.rows:
                finished = self._step(running)
            else:
                finished = []
        self.stats.seconds += time.perf_counter() - t0
        return finished

    def _admit(self, running: _Running, requests: list[_Request]) -> list[tuple[_Row, Generation]]:
        prompts = [r.prompt_ids for r in requests]
        device = module_device(self.model)
        matches = self._prefix_matches(prompts)
        step_ids, step_pos, attention, cache = self._prefill_inputs(prompts, matches, device)
        rows = [_Row(r, min(self.sampling.max_new_tokens, self.max_context - len(r.prompt_ids)), self._draws(r.prompt_ids)) for r in requests]
        logits = _ban(self._next_logits(step_ids, attention, step_pos, cache), [r.banned for r in requests])
        picks = self._pick(logits, [row.draws for row in rows])
        self._merge(running, _Running(rows, cache, attention, picks, torch.tensor([len(p) for p in prompts])))
        for entry, r in matches:  # the new rows' entries, once they end, hold these prefixes too
            if entry is not None and r > 0:
                self.prefix_cache.discard(entry)
        self.stats.batches += 1
        self.stats.requests += len(requests)
        self.stats.largest_batch = max(self.stats.largest_batch, len(running.rows))
        self.stats.prompt_tokens += sum(len(p) for p in prompts)
        self.stats.reused_tokens += sum(r for _, r in matches)
        return self._record(running, range(len(running.rows) - len(rows), len(running.rows)), picks)

    def _step(self, running: _Running) -> list[tuple[_Row, Generation]]:
        n = len(running.rows)
        running.attention = torch.cat([running.attention, torch.ones((n, 1), dtype=torch.long)], dim=1)
        logits = self._next_logits(running.next_ids.unsqueeze(1), running.attention, running.next_pos.unsqueeze(1), running.cache)
        picks = self._pick(_ban(logits, [row.request.banned for row in running.rows]), [row.draws for row in running.rows])
        running.next_ids, running.next_pos = picks, running.next_pos + 1
        return self._record(running, range(n), picks)

    def _record(self, running: _Running, rows: range, picks: torch.Tensor) -> list[tuple[_Row, Generation]]:
        """Append each row's new token; the rows that end with it, with their generations."""
        finished = []
        for i, token in zip(rows, picks.tolist()):
            row = running.rows[i]
            row.output.append(int(token))
            self.stats.generated_tokens += 1
            if token in self.stop_ids or len(row.output) >= row.budget:
                row.done = True
                prompt = row.request.prompt_ids
                self._keep_row(running.cache, running.attention, i, prompt, row.output)
                finished.append((row, self._generation(prompt, list(row.output))))
        return finished

    @staticmethod
    def _merge(running: _Running, new: _Running) -> None:
        """Add ``new``'s rows to ``running``, left-padding the shorter side's cache and mask."""
        if not running.rows:
            running.rows, running.cache, running.attention = new.rows, new.cache, new.attention
            running.next_ids, running.next_pos = new.next_ids, new.next_pos
            return
        old_len, new_len = running.attention.shape[1], new.attention.shape[1]
        length = max(old_len, new_len)

        def pad(x: torch.Tensor, by: int, dim: int) -> torch.Tensor:
            if by == 0:
                return x
            shape = list(x.shape)
            shape[dim] = by
            return torch.cat([x.new_zeros(shape), x], dim=dim)

        running.attention = torch.cat([pad(running.attention, length - old_len, 1), pad(new.attention, length - new_len, 1)])
        for mine, theirs in zip(running.cache.layers, new.cache.layers):
            mine.keys = torch.cat([pad(mine.keys, length - old_len, 2), pad(theirs.keys, length - new_len, 2)])
            mine.values = torch.cat([pad(mine.values, length - old_len, 2), pad(theirs.values, length - new_len, 2)])
        running.next_ids = torch.cat([running.next_ids, new.next_ids])
        running.next_pos = torch.cat([running.next_pos, new.next_pos])
        running.rows += new.rows

    @staticmethod
    def _compact(running: _Running) -> None:
        """Drop the rows that ended, and the leading columns that are padding in every row left."""
        keep = [i for i, row in enumerate(running.rows) if not row.done]
        if len(keep) == len(running.rows):
            return
        if not keep:
            running.rows, running.cache = [], None
            return
        index = torch.tensor(keep)
        attention = running.attention[index]
        first = int(attention.any(0).nonzero()[0])
        running.attention = attention[:, first:]
        for layer in running.cache.layers:
            where = index.to(layer.keys.device)
            layer.keys = layer.keys.index_select(0, where)[:, :, first:]
            layer.values = layer.values.index_select(0, where)[:, :, first:]
        running.next_ids, running.next_pos = running.next_ids[index], running.next_pos[index]
        running.rows = [running.rows[i] for i in keep]

    # -- prefix reuse (parlswarm.models.prefix_cache) ------------------------------------------

    def _prefix_matches(self, prompts: list[list[int]]) -> list[tuple[PrefixEntry | None, int]]:
        if not self.prefix_cache.enabled:
            return [(None, 0)] * len(prompts)
        # Parameters updated in place (an optimiser step) or replaced (a move, a load) change
        # their version or storage: keys and values computed with the old weights are void.
        state = tuple((p.data_ptr(), p._version) for p in self.model.parameters())
        if state != self._weights_state:
            self.prefix_cache.clear()
            self._weights_state = state
        return [self.prefix_cache.match(p) for p in prompts]

    @staticmethod
    def _past_cache(matches: list[tuple[PrefixEntry | None, int]], past: int, device: torch.device) -> Any:
        """A cache holding each row's reused keys and values, left-padded to ``past`` tokens."""
        from transformers import DynamicCache

        rows = [(i, entry, r) for i, (entry, r) in enumerate(matches) if entry is not None and r > 0]
        if not rows:
            return DynamicCache()
        n = len(matches)
        layers = []
        for layer, (k0, v0) in enumerate(rows[0][1].layers):
            keys = torch.zeros((n, k0.shape[0], past, k0.shape[2]), dtype=k0.dtype, device=device)
            values = torch.zeros((n, v0.shape[0], past, v0.shape[2]), dtype=v0.dtype, device=device)
            for i, entry, r in rows:
                k, v = entry.layers[layer]
                keys[i, :, past - r :] = k[:, :r]
                values[i, :, past - r :] = v[:, :r]
            layers.append((keys, values))
        return DynamicCache(ddp_cache_data=layers)

    def _keep_prefixes(
        self,
        prompts: list[list[int]],
        outputs: list[list[int]],
        matches: list[tuple[PrefixEntry | None, int]],
        cache: Any,
        attention: torch.Tensor,
    ) -> None:
        """Store every row's prompt and fed reply tokens with their keys and values."""
        for i, (p, o) in enumerate(zip(prompts, outputs)):
            self._keep_row(cache, attention, i, p, o)
        for entry, r in matches:
            if entry is not None and r > 0:
                self.prefix_cache.discard(entry)

    def _keep_row(self, cache: Any, attention: torch.Tensor, i: int, prompt: list[int], output: list[int]) -> None:
        """Store row ``i``'s prompt and the reply tokens fed so far with their keys and values."""
        layers = getattr(cache, "layers", None)
        if not self.prefix_cache.enabled or not layers or any(getattr(layer, "is_sliding", False) for layer in layers):
            return  # (a cache that drops old positions holds no whole prefix)
        held = attention[i, : cache.get_seq_length()].nonzero().flatten()
        # The reply's last token was never fed back; after a row stops, padding may be fed.
        keep = len(prompt) + min(len(output), len(held) - len(prompt))
        index = held[:keep].to(layers[0].keys.device)
        kv: list[LayerKV] = [(layer.keys[i].index_select(1, index), layer.values[i].index_select(1, index)) for layer in layers]
        self.prefix_cache.add((prompt + output)[:keep], kv)

    def _overflow(self, tokens: int) -> ModelError:
        return ModelError(f"model {self.name}: prompt of {tokens} tokens fills its context of {self.max_context} tokens")

    def start_sampling_round(self, number: int) -> None:
        """Key the seeded draws of the requests that follow by ``number`` (a PARL step): a run
        resumed at a step draws what an unbroken run drew there."""
        self.sampling_round = number
        self._round_part = 0
        self._prompts_drawn.clear()

    def _draws(self, prompt_ids: list[int]) -> torch.Generator | None:
        """The sampling stream of one request; None when decoding is greedy.

        With a seed, each request has its own stream, keyed by the seed, the sampling round,
        the prompt and how many requests of the round had that prompt before: what a request
        draws depends neither on its batch-mates nor on when it arrived, so seeded runs repeat
        under continuous batching too (up to the rounding of batched arithmetic). Identical
        prompts (a group's first turns) still draw differently."""
        if self.sampling.temperature == 0:
            return None
        if self.sampling.seed is None:
            return self._generator
        if len(self._prompts_drawn) >= self.round_prompt_cap:
            # A server never starts a round: rather than grow without end, go on in a fresh part
            # of the round, whose draws differ from the earlier part's for the same prompt.
            self._prompts_drawn.clear()
            self._round_part += 1
        prompt = hashlib.blake2b(array("q", prompt_ids).tobytes(), digest_size=16).digest()
        seen = self._prompts_drawn[prompt]
        self._prompts_drawn[prompt] += 1
        round_key = f"{self.sampling_round}.{self._round_part}" if self._round_part else str(self.sampling_round)
        key = hashlib.blake2b(f"{self.sampling.seed}/{round_key}/{seen}/".encode() + prompt, digest_size=8)
        return torch.Generator(device="cpu").manual_seed(int.from_bytes(key.digest(), "little") >> 1)

    def _pick(self, logits: torch.Tensor, draws: Sequence[torch.Generator | None]) -> torch.Tensor:
        if self.sampling.temperature == 0:
            return logits.argmax(-1)
        probs = torch.softmax(logits.float() / self.sampling.temperature, dim=-1)
        if self.sampling.top_p < 1.0:
            sorted_probs, order = probs.sort(-1, descending=True)
            keep = sorted_probs.cumsum(-1) - sorted_probs < self.sampling.top_p
            sorted_probs = sorted_probs * keep
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        return torch.cat([torch.multinomial(row, 1, generator=g) for row, g in zip(probs, draws)])


def _ban(logits: torch.Tensor, banned: Sequence[tuple[int, ...]]) -> torch.Tensor:
    """``logits`` with each row's banned tokens out of reach."""
    if not any(banned):
        return logits
    logits = logits.clone()
    for i, ids in enumerate(banned):
        if ids:
            logits[i, list(ids)] = float("-inf")
    return logits


def load_builtin(arg: str = "", options: Any = None) -> LocalModel:
    """A model committed with parlswarm: ``--model builtin`` (nano) or ``--model builtin:NAME``."""
    folder = local_path(f"builtin:{arg}")
    return LocalModel.from_pretrained(folder, name=f"builtin:{arg}" if arg else "builtin", sampling=_sampling(options, folder))


def _sampling(options: Any, path: Path | None = None) -> Sampling | None:
    temperature = getattr(options, "temperature", None)
    if temperature is None:
        return None
    saved = read_settings(path) if path is not None else None
    base = saved.sampling if saved is not None else Sampling()
    return base.model_copy(update={"temperature": temperature})


def load_hf(arg: str, options: Any = None) -> LocalModel:
    path = local_path(f"hf:{arg}")
    return LocalModel.from_pretrained(path, name=f"hf:{arg}", sampling=_sampling(options, path))


def load_hf_gguf(arg: str, options: Any = None) -> LocalModel:
    file = local_path(f"hf-gguf:{arg}")
    if not file.is_file():
        raise ModelSpecError(f"GGUF file not found: {file}")
    return LocalModel.from_pretrained(file.parent, gguf_file=file.name, name=f"hf-gguf:{arg}", sampling=_sampling(options))


# The local ``--model`` forms: prefix -> (loader, help).
LOCAL_FORMS: dict[str, tuple[Callable[..., LocalModel], str]] = {
    "builtin": (load_builtin, "builtin (the nano model shipped with parlswarm) or builtin:NAME (weights/NAME)"),
    "hf": (load_hf, "hf:PATH (a Hugging Face model folder)"),
    "hf-gguf": (load_hf_gguf, "hf-gguf:FILE.gguf or hf-gguf:smollm2"),
}


def load_local(spec: str) -> LocalModel:
    """A local model from one of the :data:`LOCAL_FORMS` (``hf-gguf:smollm2``, …) or a folder path."""
    prefix, _, arg = spec.partition(":")
    if prefix in LOCAL_FORMS:
        return LOCAL_FORMS[prefix][0](arg)
    return LocalModel.from_pretrained(local_path(spec))


def _register() -> None:
    from parlswarm.models.registry import register

    for prefix, (loader, help_text) in LOCAL_FORMS.items():
        register(prefix, loader, help_text)


_register()

__all__ = [
    "LOCAL_FORMS",
    "BatchStats",
    "Generation",
    "LocalModel",
    "load_builtin",
    "load_hf",
    "load_hf_gguf",
    "load_local",
    "module_device",
    "torch_device",
]
