"""Turn a ``--model`` value into a Model.

Known forms:

- ``kimi-k2.5`` (or ``moonshot:NAME``): Moonshot's API, key from ``MOONSHOT_API_KEY``
- ``openai:NAME``: OpenAI's API, key from ``OPENAI_API_KEY``
- ``NAME`` with ``base_url``: any OpenAI-compatible server (vLLM, SGLang, Ollama ...)
- ``scripted:FILE``: replies from a YAML/JSON list (tests, demos)

Other packages of parlswarm add forms with :func:`register` (the offline world adds
``expert``, the local backend ``builtin`` and ``hf:PATH``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from parlswarm.models.base import Model, ModelSpecError
from parlswarm.models.openai_compat import MOONSHOT, OPENAI, SELF_HOSTED, OpenAICompatModel
from parlswarm.models.resilient import ResilientModel, RetryPolicy
from parlswarm.models.scripted import ScriptedModel


@dataclass(frozen=True)
class ModelOptions:
    """Options from the command line or a config that apply to remote models."""

    base_url: str | None = None
    thinking: bool | None = None
    temperature: float | None = None
    max_retries: int = 6  # per call, by ResilientModel (the SDK's own retries are off)
    timeout: float = 600.0  # seconds per attempt
    retry_base_delay: float = 0.5  # first backoff, doubled at each retry


Factory = Callable[[str, ModelOptions], Model]
_FACTORIES: dict[str, Factory] = {}
_HELP: dict[str, str] = {}


def register(prefix: str, factory: Factory, help: str) -> None:
    """Make ``PREFIX`` or ``PREFIX:ARG`` resolve through ``factory(ARG, options)``."""
    _FACTORIES[prefix] = factory
    _HELP[prefix] = help


def known_forms() -> list[str]:
    base = ["kimi-k2.5", "moonshot:NAME", "openai:NAME", "NAME with --base-url URL", "scripted:FILE"]
    return base + [_HELP[p] for p in sorted(_HELP)]


# Backends with heavy or optional dependencies register themselves when their module is
# imported; only the module a --model value names is imported (torch costs seconds).
_PLUGINS: dict[str, str] = {
    "expert": "parlswarm.world.expert",
    "builtin": "parlswarm.models.local",
    "hf": "parlswarm.models.local",
    "hf-gguf": "parlswarm.models.local",
    "prefixed": "parlswarm.parl.prefixed",
    "scripted-ui2code": "parlswarm.vision.scripted",
}


def _load_plugin(prefix: str) -> None:
    import importlib

    module = _PLUGINS.get(prefix)
    if module is not None and prefix not in _FACTORIES:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ModelSpecError(f"model '{prefix}' needs an optional dependency that is missing: {exc}") from None


def _load_all_plugins() -> None:
    for prefix in _PLUGINS:
        try:
            _load_plugin(prefix)
        except ModelSpecError:
            pass


_BUILTIN_PREFIXES = ("kimi-k2.5", "moonshot", "openai", "scripted")


def split_model_list(specs: str) -> list[str]:
    """Split a comma-separated list of models, keeping a model's own comma-separated options.

    ``expert:rows=2,agents=4,builtin`` is two models: a piece continues the model before it
    when that one has options (``PREFIX:...``) and the piece does not start a known model.
    """
    out: list[str] = []
    for piece in (p.strip() for p in specs.split(",")):
        if not piece:
            continue
        head = piece.partition(":")[0]
        starts_model = head in _BUILTIN_PREFIXES or head in _PLUGINS or head in _FACTORIES or ":" in piece
        if out and ":" in out[-1] and not starts_model:
            out[-1] += "," + piece
        else:
            out.append(piece)
    return out


def load_model(spec: str, options: ModelOptions | None = None) -> Model:
    """Resolve ``spec``; raises ModelSpecError with the known forms when it names nothing."""
    options = options or ModelOptions()
    spec = spec.strip()
    if not spec:
        raise ModelSpecError("empty model name")
    prefix, _, arg = spec.partition(":")
    common = dict(
        thinking=options.thinking,
        temperature=options.temperature,
        max_retries=0,  # ResilientModel retries
        timeout=options.timeout,
    )
    # Remote endpoints fail in passing (429, 5xx, timeouts): their calls are retried.
    policy = RetryPolicy(max_retries=options.max_retries, timeout=options.timeout, base_delay=options.retry_base_delay)
    if prefix == "scripted" and arg:
        return ScriptedModel.from_file(arg)
    if spec == "kimi-k2.5" or (prefix == "moonshot" and arg):
        return ResilientModel(OpenAICompatModel(model=arg or spec, preset=MOONSHOT, base_url=options.base_url, **common), policy)  # type: ignore[arg-type]
    if prefix == "openai" and arg:
        return ResilientModel(OpenAICompatModel(model=arg, preset=OPENAI, base_url=options.base_url, **common), policy)  # type: ignore[arg-type]
    _load_plugin(prefix)
    if prefix in _FACTORIES:
        return _FACTORIES[prefix](arg, options)
    if options.base_url:
        return ResilientModel(OpenAICompatModel(model=spec, preset=SELF_HOSTED, base_url=options.base_url, **common), policy)  # type: ignore[arg-type]
    _load_all_plugins()
    raise ModelSpecError(f"unknown model '{spec}'; known forms: {'; '.join(known_forms())}")
