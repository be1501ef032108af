"""Ship a trained model with parlswarm: a run's ``final/`` folder becomes ``weights/NAME``.

``--model builtin`` is ``weights/nano``; ``--model builtin:NAME`` any other shipped folder. What
ships has to load on a fresh install and stay small (git holds every version; there is no LFS):

- a whole model is copied as saved, or with ``dtype="float16"`` its weights cast to float16
  (half the bytes; the loader reads them back as float32);
- a LoRA adapter is cast to float16 (half the bytes; merged into a float32 base it loads as
  float32 again), or with ``dtype="int8"`` stored as 8-bit rows and their scales (a quarter),
  and ships without its tokenizer, since its base brings one. Its base must
  be a spec that resolves on any install (``builtin``, ``builtin:NAME``, ``hf-gguf:smollm2``),
  not a run folder of this machine. An adapter trained on another adapter (a PARL checkpoint
  on its SFT warm start) ships with ``fold``: the chain becomes one adapter on the first
  portable base (:mod:`parlswarm.models.fold`), exactly or at a chosen rank.

The manifest is the run's own (config, data seeds, git commit, dev figures), with the
manifests of the runs it went on from (its ``init``, and theirs) as ``stages``, plus the
evaluation figures measured on the folder before it shipped (``benchmarks/nano_eval.py --out``).
A shipped folder can ship again (``weights/NAME`` over itself as int8): its manifest keeps
``shipped_from`` and lists the later shippings under ``reshipped``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Literal

from parlswarm.models.adapter import ADAPTER_CONFIG, ADAPTER_INT8, ADAPTER_WEIGHTS, adapter_tensors, has_adapter, to_int8
from parlswarm.models.base import ModelSpecError
from parlswarm.models.fold import folded_record, write_folded
from parlswarm.models.local_settings import SETTINGS_FILE, LocalSettings, read_settings
from parlswarm.models.local_specs import BUILTIN_NAME, WEIGHTS_DIR, is_builtin, local_path, weights_digest

MANIFEST = "manifest.json"
# Files of a saved run that a shipped folder leaves out: the model card peft writes, a PARL
# checkpoint's optimiser state, and an adapter's tokenizer (its base has the same one).
_NEVER = {"README.md", MANIFEST, "trainer_state.pt"}
_TOKENIZER = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"}
_PORTABLE_BASES = ("builtin", "hf-gguf:smollm2")
ShipDtype = Literal["float16", "int8"]


class ShipError(ValueError):
    """A folder that cannot ship, with what is wrong named."""


def _portable(base: str) -> bool:
    return is_builtin(base) or base in _PORTABLE_BASES


def _evaluation(files: list[Path], command: str | None) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for file in files:
        try:
            report = json.loads(file.read_text(encoding="utf-8"))
            figures.update(_parl_rows(report) if isinstance(report, list) else _nano_eval(report))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ShipError(
                f"{file}: not a benchmarks/nano_eval.py --out report nor a benchmarks/parl_experiments.py results.json ({exc})"
            ) from None
    return {"command": command, "figures": figures} if command else {"figures": figures}


def _nano_eval(report: dict[str, Any]) -> dict[str, Any]:
    key = f"{report['model']} · world seed {report['world_seed']} · {report['split']}"
    # The figures, not every transcript.
    return {key: {part: {k: v for k, v in value.items() if k != "runs"} for part, value in report.items() if isinstance(value, dict)}}


def _parl_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The rows of a PARL evaluation, one per policy and critical-step budget."""
    named = ("condition", "seed", "policy", "eval_world_seed", "eval_split", "critical_budget")
    figures: dict[str, Any] = {}
    for row in rows:
        seed = "" if row["seed"] is None else f" seed {row['seed']}"
        policy = f" ({row['policy']})" if row.get("policy") else ""  # results.json from stop 26 on
        split = row.get("eval_split") or "test"  # rows before --eval-split were all on the test split
        key = f"{row['condition']}{seed}{policy} · world seed {row['eval_world_seed']} · {split} · {row['critical_budget']} critical steps"
        figures[key] = {k: v for k, v in row.items() if k not in named}
    return figures


def _holds(folder: str, digest: str) -> bool:
    """Whether ``folder`` still holds the weights whose :func:`weights_digest` is ``digest``."""
    try:
        return weights_digest(folder) == digest
    except ModelSpecError:
        return False


def _stages(manifest: dict[str, Any], folder: Path) -> list[dict[str, Any]]:
    """The manifests of the runs the one in ``folder`` started from (its ``init``, and so on), earliest first."""
    stages: list[dict[str, Any]] = []
    init, recorded = _started_from(manifest, folder)
    while init and (file := _manifest_of(init)) is not None and len(stages) < 100:
        earlier = json.loads(file.read_text(encoding="utf-8"))
        if recorded and not _holds(init, recorded):
            # The folder was trained on or shipped over since: its manifest tells another model's
            # history. If that history holds a stage that started from the same weights as this
            # one did (a round shipped over its own init, once or more), what came before that
            # stage is this one's history too.
            history = _history_of(earlier, recorded)
            if history is not None:
                return [*history, *stages]
            stages.insert(0, {
                "init_folder": init, "init_digest": recorded,
                "unknown": f"{init} now holds other weights than the stage after it started from; the stages before are not known",
            })
            return stages
        stages.insert(0, {"init_folder": init, **{k: v for k, v in earlier.items() if k != "stages"}})
        if "stages" in earlier:
            # A shipped model's manifest holds its history as it was shipped. Its own init may
            # name the folder it now sits in (a round on builtin:NAME shipped over NAME), whose
            # manifest is this one again: walking on would loop.
            return [*earlier["stages"], *stages]
        init, recorded = _started_from(earlier, file.parent)
    return stages


def _history_of(manifest: dict[str, Any], digest: str) -> list[dict[str, Any]] | None:
    """The stages before weights of ``digest`` were trained on, as a shipped ``manifest`` records
    them: its own stages if its run started from them, else those before the recorded stage that
    did; None when no stage it records started from them."""
    if "stages" not in manifest:
        return None
    if manifest.get("init_digest") == digest:
        return list(manifest["stages"])
    for i, stage in enumerate(manifest["stages"]):
        if stage.get("init_digest") == digest:
            return list(manifest["stages"][:i])
    return None


def _started_from(manifest: dict[str, Any], folder: Path) -> tuple[str | None, str | None]:
    """The model a run started from, and the digest its weights had then, if recorded.

    A new adapter trained on another adapter (a PARL checkpoint on its warm start) names that
    one as its base, with its digest, and that is where it started: the run's ``init`` may be
    a name (``builtin:smollm2``) that has held other weights since. An adapter on a whole model
    started from its ``init`` (the adapter it went on training, or the base itself)."""
    saved = read_settings(folder) if has_adapter(folder) else None
    if saved is not None and saved.base and _is_adapter(saved.base):
        return saved.base, saved.base_digest
    config = manifest.get("config") or {}
    # An SFT config's init, a PARL config's policy.
    return config.get("init") or config.get("policy"), manifest.get("init_digest")


def _is_adapter(spec: str) -> bool:
    try:
        return has_adapter(local_path(spec))
    except ModelSpecError:
        return False


def _manifest_of(spec: str) -> Path | None:
    try:
        file = local_path(spec) / MANIFEST
    except ModelSpecError:
        return None
    return file if file.is_file() else None


def _half(tensors: dict[str, Any]) -> dict[str, Any]:
    import torch

    return {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in tensors.items()}


def _write_weights(source: Path, staging: Path, dtype: ShipDtype) -> None:
    """An adapter's weights (float32, float16 or int8 as saved) as ``dtype``."""
    from safetensors.torch import save_file

    tensors = adapter_tensors(source)
    if dtype == "int8":
        save_file(to_int8(tensors), str(staging / ADAPTER_INT8), metadata={"format": "pt"})
    else:
        save_file(_half(tensors), str(staging / ADAPTER_WEIGHTS), metadata={"format": "pt"})


def _write_half_model(source: Path, staging: Path) -> set[str]:
    """A whole model's weights files cast to float16, its config saying so; returns the files written."""
    from safetensors.torch import load_file, save_file

    written = set()
    for file in sorted(source.glob("*.safetensors")):
        save_file(_half(load_file(str(file))), str(staging / file.name), metadata={"format": "pt"})
        written.add(file.name)
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    config["dtype"] = "float16"  # transformers' key; LocalModel loads as float32 whatever it says
    (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return {*written, "config.json"}


def ship(
    source: str | Path,
    name: str,
    *,
    evaluations: list[Path] | None = None,
    command: str | None = None,
    root: Path | None = None,
    replace: bool = False,
    fold: bool = False,
    rank: int | None = None,
    keep_last: bool = False,
    dtype: ShipDtype | None = None,
) -> Path:
    """Copy the saved model in ``source`` to ``root/name`` (``weights/`` by default); returns it.

    ``fold`` ships an adapter on another adapter as one adapter on the first portable base:
    exactly (ranks add up), or the best approximation of rank ``rank`` (with ``keep_last``, of
    the adapters before the last, which is kept whole: the run being shipped). An adapter's weights
    ship as ``dtype``: float16, or int8 (half float16's bytes, rows scaled by their largest
    magnitude; :mod:`parlswarm.models.adapter` reads them); by default float16. A whole model
    ships as saved, or as ``dtype`` float16."""
    source = Path(source)
    root = WEIGHTS_DIR if root is None else root
    dest = root / name
    settings_file = source / SETTINGS_FILE
    if not BUILTIN_NAME.fullmatch(name):
        raise ShipError(f"cannot ship as {name!r}: a name is lower-case letters, digits, '-' and '_'")
    if not settings_file.is_file():
        raise ShipError(f"{source} has no {SETTINGS_FILE}: ship the final/ folder of a training run")
    adapter = has_adapter(source)
    base = ""
    if not adapter and not (source / "config.json").is_file():
        raise ShipError(f"{source} holds neither a model (config.json) nor an adapter (adapter_config.json)")
    if dtype not in (None, "float16", "int8"):
        raise ShipError(f"a model ships as float16 or int8, not {dtype!r}")
    if dtype == "int8" and not adapter:
        raise ShipError(f"{source} is a whole model, which ships as saved or as float16: int8 is for adapters")
    if dtype == "float16" and not adapter and not any(source.glob("*.safetensors")):
        raise ShipError(f"{source} keeps its weights in no .safetensors file: only those can ship as float16")
    if adapter and dtype is None:
        dtype = "float16"  # half the bytes; merged into its float32 base it loads as float32 again
    if (rank is not None or keep_last) and not fold:
        raise ShipError("rank and keep_last apply to a folded adapter: pass fold too")
    if adapter:
        base = (read_settings(source) or LocalSettings()).base or ""
        if not _portable(base) and not (fold and has_adapter(local_path(base))):
            raise ShipError(
                f"{source} is an adapter on {base!r}, which a fresh install cannot load; "
                f"ship its base first and name it as builtin:NAME, train on one of {', '.join(_PORTABLE_BASES)}, "
                "or, when the base is itself an adapter, fold the two into one"
            )
    if dest.exists() and not replace:
        raise ShipError(f"{dest} exists: pass replace to ship over it")
    manifest: dict[str, Any] = {}
    if (source / MANIFEST).is_file():
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    if "shipped_from" in manifest or source.resolve().parent in (WEIGHTS_DIR.resolve(), root.resolve()):
        # A shipped model shipped again (in place, as int8, to make room): its history was written
        # when it first shipped (walking it again would find its own folder, which may be its
        # init); each later shipping is added to it. The first shipped models predate shipped_from.
        shipping: dict[str, Any] = {"from": str(source), "dtype": dtype or "as saved"}
        if evaluations and "evaluation" in manifest:
            shipping["evaluation_before"] = manifest["evaluation"]  # the figures of the weights it replaces
        manifest.setdefault("reshipped", []).append(shipping)
    else:
        manifest["shipped_from"] = str(source)
        if stages := _stages(manifest, source):
            manifest["stages"] = stages  # how the weights it went on training were made
    if evaluations:
        manifest["evaluation"] = _evaluation(evaluations, command)

    staging = root / f".{name}.shipping"
    shutil.rmtree(staging, ignore_errors=True)
    if adapter and not _portable(base):
        folded_dir = root / f".{name}.folding"
        shutil.rmtree(folded_dir, ignore_errors=True)
        try:
            chain, folded = write_folded(source, folded_dir, rank=rank, keep_last=keep_last, stop_at=_portable)
        except (ModelSpecError, ValueError) as exc:
            shutil.rmtree(folded_dir, ignore_errors=True)
            raise ShipError(str(exc)) from None
        manifest["folded"] = folded_record(chain, folded)
        base = (read_settings(folded_dir) or LocalSettings()).base or ""
        try:
            if not _portable(base):
                raise ShipError(f"{source} folds into an adapter on {base!r}, which a fresh install cannot load either")
            return _write(folded_dir, dest, staging, manifest, base, dtype)
        finally:
            shutil.rmtree(folded_dir, ignore_errors=True)
    return _write(source, dest, staging, manifest, base if adapter else None, dtype)


def _write(
    source: Path, dest: Path, staging: Path, manifest: dict[str, Any], base: str | None, dtype: ShipDtype | None
) -> Path:
    """Copy ``source`` into ``staging`` (an adapter, on ``base``, as ``dtype``), then swap it in as ``dest``."""
    adapter = base is not None
    staging.mkdir(parents=True)
    skip: set[str] = set()  # files of source that are not copied as they are
    if adapter:
        assert dtype is not None, "ship() gives an adapter its dtype"
        _write_weights(source, staging, dtype)
        skip = {*_TOKENIZER, ADAPTER_WEIGHTS, ADAPTER_INT8}
        manifest["dtype"] = dtype
    elif dtype == "float16":
        skip = _write_half_model(source, staging)
        manifest["dtype"] = dtype
    for file in sorted(p for p in source.iterdir() if p.is_file() and p.name not in _NEVER):
        if file.name in skip:
            continue
        if adapter and file.name == ADAPTER_CONFIG:
            # peft records the base as a path of this machine; name it by its spec instead.
            config = json.loads(file.read_text(encoding="utf-8"))
            config["base_model_name_or_path"] = base
            (staging / file.name).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        else:
            shutil.copy2(file, staging / file.name)
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    # Swapped in whole, so a failed copy never leaves a half-shipped model under the name.
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    return dest


__all__ = ["MANIFEST", "ShipDtype", "ShipError", "ship"]
