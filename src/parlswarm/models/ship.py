"""Ship a trained model with parlswarm: a run's ``final/`` folder becomes ``weights/NAME``.

``--model builtin`` is ``weights/nano``; ``--model builtin:NAME`` any other shipped folder. What
ships has to load on a fresh install and stay small (git holds every version; there is no LFS):

- a whole model is copied as saved;
- a LoRA adapter is cast to float16 (half the bytes; merged into a float32 base it loads as
  float32 again) and ships without its tokenizer, since its base brings one. Its base must
  be a spec that resolves on any install (``builtin``, ``builtin:NAME``, ``hf-gguf:smollm2``),
  not a run folder of this machine.

The manifest is the run's own (config, data seeds, git commit, dev figures), with the
manifests of the runs it went on from (its ``init``, and theirs) as ``stages``, plus the
evaluation figures measured on the folder before it shipped (``benchmarks/nano_eval.py --out``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from parlswarm.models.adapter import ADAPTER_CONFIG, has_adapter
from parlswarm.models.base import ModelSpecError
from parlswarm.models.local import BUILTIN_NAME, SETTINGS_FILE, WEIGHTS_DIR, LocalSettings, is_builtin, weights_digest

MANIFEST = "manifest.json"
# Files of a saved run that a shipped folder leaves out: the model card peft writes, and an
# adapter's tokenizer (its base has the same one).
_NEVER = {"README.md", MANIFEST}
_TOKENIZER = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"}
_PORTABLE_BASES = ("builtin", "hf-gguf:smollm2")


class ShipError(ValueError):
    """A folder that cannot ship, with what is wrong named."""


def _portable(base: str) -> bool:
    return is_builtin(base) or base in _PORTABLE_BASES


def _evaluation(files: list[Path], command: str | None) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for file in files:
        try:
            report = json.loads(file.read_text(encoding="utf-8"))
            key = f"{report['model']} · world seed {report['world_seed']} · {report['split']}"
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ShipError(f"{file}: not a benchmarks/nano_eval.py --out report ({exc})") from None
        figures[key] = {
            part: {k: v for k, v in value.items() if k != "runs"}  # the figures, not every transcript
            for part, value in report.items()
            if isinstance(value, dict)
        }
    return {"command": command, "figures": figures} if command else {"figures": figures}


def _holds(folder: str, digest: str) -> bool:
    """Whether ``folder`` still holds the weights whose :func:`weights_digest` is ``digest``."""
    try:
        return weights_digest(folder) == digest
    except ModelSpecError:
        return False


def _stages(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifests of the runs this one started from (its ``init``, and so on), earliest first."""
    stages: list[dict[str, Any]] = []
    later = manifest
    init = (manifest.get("config") or {}).get("init")
    while init and (Path(init) / MANIFEST).is_file() and len(stages) < 100:
        recorded = later.get("init_digest")
        if recorded and not _holds(init, recorded):
            # The folder was trained on or shipped over since: its manifest tells another model's history.
            stages.insert(0, {
                "init_folder": init, "init_digest": recorded,
                "unknown": f"{init} now holds other weights than the stage after it started from; the stages before are not known",
            })
            return stages
        earlier = json.loads((Path(init) / MANIFEST).read_text(encoding="utf-8"))
        stages.insert(0, {"init_folder": init, **{k: v for k, v in earlier.items() if k != "stages"}})
        if "stages" in earlier:
            # A shipped model's manifest holds its history as it was shipped. Its own init may
            # name the folder it now sits in (a round on builtin:NAME shipped over NAME), whose
            # manifest is this one again: walking on would loop.
            return [*earlier["stages"], *stages]
        init = (earlier.get("config") or {}).get("init")
        later = earlier
    return stages


def _half(source: Path, dest: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(source))
    save_file({k: v.to(torch.float16) if v.is_floating_point() else v for k, v in tensors.items()}, str(dest))


def ship(
    source: str | Path,
    name: str,
    *,
    evaluations: list[Path] | None = None,
    command: str | None = None,
    root: Path | None = None,
    replace: bool = False,
) -> Path:
    """Copy the saved model in ``source`` to ``root/name`` (``weights/`` by default); returns it."""
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
    if adapter:
        base = LocalSettings.model_validate_json(settings_file.read_text(encoding="utf-8")).base or ""
        if not _portable(base):
            raise ShipError(
                f"{source} is an adapter on {base!r}, which a fresh install cannot load; "
                f"ship its base first and name it as builtin:NAME, or train on one of {', '.join(_PORTABLE_BASES)}"
            )
    if dest.exists() and not replace:
        raise ShipError(f"{dest} exists: pass replace to ship over it")
    manifest: dict[str, Any] = {}
    if (source / MANIFEST).is_file():
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    manifest["shipped_from"] = str(source)
    if stages := _stages(manifest):
        manifest["stages"] = stages  # how the weights it went on training were made
    if evaluations:
        manifest["evaluation"] = _evaluation(evaluations, command)

    staging = root / f".{name}.shipping"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for file in sorted(p for p in source.iterdir() if p.is_file() and p.name not in _NEVER):
        if adapter and file.name in _TOKENIZER:
            continue
        if adapter and file.suffix == ".safetensors":
            _half(file, staging / file.name)
            manifest["dtype"] = "float16"
        elif adapter and file.name == ADAPTER_CONFIG:
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


__all__ = ["MANIFEST", "ShipError", "ship"]
