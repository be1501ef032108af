"""Key frames of a screen recording, for models that take images but not video.

Animated GIF, APNG and animated WebP are read with Pillow, which the ``vision`` extra
installs. Other containers (MP4, WebM, MOV) are read with ``imageio`` when it has a video
plugin (``pip install "imageio[pyav]"`` or ``imageio-ffmpeg``); without one the error says
so. A frame is *key* when it differs enough from the last key frame (mean absolute
difference of small grey thumbnails); the first frame is always key, and when there are
more than ``max_frames`` an even spread of them is kept, first and last included.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

MAX_READ = 3000  # frames looked at; longer recordings are sampled


def _thumb(frame: Image.Image) -> np.ndarray:
    grey = frame.convert("L")
    width = 96
    height = max(1, round(grey.height * width / max(1, grey.width)))
    return np.asarray(grey.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0


def _pillow_frames(path: Path) -> Iterator[Image.Image] | None:
    try:
        img = Image.open(path)
    except UnidentifiedImageError:
        return None
    return (frame.convert("RGB") for frame in ImageSequence.Iterator(img))


def _imageio_frames(path: Path) -> Iterator[Image.Image]:
    try:
        import imageio.v3 as iio
    except ImportError:
        raise ValueError(f"cannot read {path}: install imageio with a video plugin (pip install 'imageio[pyav]')") from None
    try:
        with warnings.catch_warnings():  # imageio's plugin probing warns about legacy plugins it tries
            warnings.simplefilter("ignore", DeprecationWarning)
            frames = iio.imiter(path)
            first = next(frames)
    except StopIteration:
        raise ValueError(f"recording {path} holds no frames") from None
    except Exception as exc:
        raise ValueError(
            f"cannot read video {path} ({type(exc).__name__}); GIF, APNG and WebP work as they are, other formats "
            "need a video plugin for imageio (pip install 'imageio[pyav]')"
        ) from None

    def chain() -> Iterator[Image.Image]:
        yield Image.fromarray(np.asarray(first)).convert("RGB")
        for frame in frames:
            yield Image.fromarray(np.asarray(frame)).convert("RGB")

    return chain()


def read_frames(path: str | Path) -> Iterator[Image.Image]:
    """Every frame of a recording (or the one frame of a still image), as RGB images."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recording not found: {path}")
    frames = _pillow_frames(path)
    return frames if frames is not None else _imageio_frames(path)


def key_frames(path: str | Path, max_frames: int = 6, threshold: float = 0.02) -> list[Image.Image]:
    """The frames of a recording that show something new (see the module docstring)."""
    if max_frames < 1:
        raise ValueError("max_frames must be at least 1")
    kept: list[Image.Image] = []
    last: np.ndarray | None = None
    for index, frame in enumerate(read_frames(path)):
        if index >= MAX_READ:
            break
        thumb = _thumb(frame)
        if last is None or thumb.shape != last.shape or float(np.abs(thumb - last).mean()) > threshold:
            kept.append(frame.copy())
            last = thumb
    if not kept:
        raise ValueError(f"recording {path} holds no frames")
    if len(kept) > max_frames:
        picks = np.linspace(0, len(kept) - 1, max_frames).round().astype(int)
        kept = [kept[i] for i in sorted(set(picks.tolist()))]
    return kept
