"""Named tool menus for the command line (``--tools NAME[,NAME]``).

Packages of parlswarm register their menus here; the CLI stays ignorant of them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from parlswarm.tools import Toolset

ToolsetFactory = Callable[[], Toolset]
_FACTORIES: dict[str, tuple[str, str]] = {
    # name: (module:function building the Toolset, help)
    "none": ("parlswarm.toolsets:empty", "no tools"),
    "vision": ("parlswarm.vision.tools:vision_toolset", "render_html, crop_image, compare_images (headless Chromium, no network)"),
    "files": ("parlswarm.containment:files_toolset", "read_file, write_file, list_dir inside the workspace folder"),
    "fetch": ("parlswarm.containment:fetch_toolset", "fetch_url (public addresses only)"),
    "python": ("parlswarm.containment:python_toolset", "run_python in a subprocess with time and memory limits"),
    "world": ("parlswarm.world.tools:default_toolset", "search, open_page, find over the offline World Factbook (seed: $PARLSWARM_WORLD_SEED, 0)"),
    "check": ("parlswarm.world.tools:check_toolset", "check(value, condition): a number against a task's filter (offered with world to a model trained with it)"),
}


def empty() -> Toolset:
    return Toolset()


def register(name: str, target: str, help: str) -> None:
    _FACTORIES[name] = (target, help)


def available() -> dict[str, str]:
    return {name: help for name, (_, help) in _FACTORIES.items()}


def load_toolsets(names: str) -> Toolset:
    """``"a,b"`` → the union of those menus; unknown names raise ValueError listing the known ones.

    A name of the form ``module:function`` imports that function and calls it for a Toolset
    (your own tools on the command line).
    """
    menu = Toolset()
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name in _FACTORIES:
            target = _FACTORIES[name][0]
        elif ":" in name:
            target = name
        else:
            raise ValueError(f"unknown tool set '{name}'; known: {', '.join(_FACTORIES)}, or module:function")
        module, _, function = target.partition(":")
        try:
            factory: ToolsetFactory = getattr(importlib.import_module(module), function)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"tool set '{name}': cannot load {target} ({exc})") from None
        tools = factory()
        if not isinstance(tools, Toolset):
            raise ValueError(f"tool set '{name}': {target}() returned {type(tools).__name__}, not a Toolset")
        menu = menu + tools
    return menu
