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
    "world": ("parlswarm.world.tools:default_toolset", "search, open_page over the offline World Factbook (seed: $PARLSWARM_WORLD_SEED, 0)"),
}


def empty() -> Toolset:
    return Toolset()


def register(name: str, target: str, help: str) -> None:
    _FACTORIES[name] = (target, help)


def available() -> dict[str, str]:
    return {name: help for name, (_, help) in _FACTORIES.items()}


def load_toolsets(names: str) -> Toolset:
    """``"a,b"`` → the union of those menus; unknown names raise ValueError listing the known ones."""
    menu = Toolset()
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name not in _FACTORIES:
            raise ValueError(f"unknown tool set '{name}'; known: {', '.join(_FACTORIES)}")
        module, _, function = _FACTORIES[name][0].partition(":")
        factory: ToolsetFactory = getattr(importlib.import_module(module), function)
        menu = menu + factory()
    return menu
