"""Images as message content: build image parts from files, bytes, PIL images and data URLs.

Models receive images as OpenAI-style ``image_url`` parts holding a ``data:`` URL, so the
same message works for Kimi K2.5, GPT-4o-class models and Qwen-VL behind vLLM. Bytes that
are already PNG/JPEG/WebP/GIF are passed on unchanged; only PIL images are encoded (PNG).

An :class:`ImageRegistry` holds the images of one run under short ids (``input``,
``render-2``, ``crop-1``...). Tools and the orchestrator refer to images by id, optionally
with a crop box in pixels: ``input[0,120,1024,480]`` is the band of ``input`` from
(0, 120) to (1024, 480). ``assign_task(..., image=REF)`` hands such a reference to a
sub-agent, whose first message then carries the image.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from PIL import Image

from parlswarm.tools import ToolContext, ToolError
from parlswarm.types import ContentPart, ImagePart, ImageURL, TextPart

if TYPE_CHECKING:
    from parlswarm.agent import RunContext

ImageSource = str | Path | bytes | Image.Image | ImagePart
Detail = Literal["auto", "low", "high"] | None

_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
_DATA_URL = re.compile(r"^data:(?P<mime>image/[\w.+-]+)?(?P<params>(;[\w-]+=[^;,]*)*)(?P<b64>;base64)?,(?P<data>.*)$", re.S)
_REF = re.compile(r"^\s*(?P<name>[\w.-]+)\s*(\[(?P<box>[^\]]*)\])?\s*$")


def decode_data_url(url: str) -> tuple[str, bytes]:
    """``data:image/png;base64,...`` → (mime type, bytes); ValueError if it is not one."""
    match = _DATA_URL.match(url)
    if match is None:
        raise ValueError(f"not an image data URL: {url[:40]!r}")
    payload = match.group("data")
    try:
        data = base64.b64decode(payload, validate=True) if match.group("b64") else payload.encode("latin-1")
    except (binascii.Error, ValueError):
        raise ValueError("image data URL holds invalid base64") from None
    return match.group("mime") or "image/png", data


def _sniff(data: bytes, what: str) -> str:
    """The mime type of encoded image bytes; ValueError when they are no image PIL can read."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or ""
    except Exception:
        raise ValueError(f"{what} is not an image PIL can read") from None
    if fmt not in _MIME:
        raise ValueError(f"{what}: image format {fmt or 'unknown'} is not accepted by models; use PNG, JPEG, WebP or GIF")
    return _MIME[fmt]


def encode_png(img: Image.Image) -> bytes:
    """PNG bytes of a PIL image (RGBA and palette images keep their mode)."""
    if img.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        img = img.convert("RGBA" if "A" in img.mode else "RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def to_data_url(source: ImageSource) -> str:
    """A ``data:`` URL for a file path, encoded bytes, a PIL image, an image part or a data URL."""
    if isinstance(source, ImagePart):
        return source.image_url.url
    if isinstance(source, Image.Image):
        return "data:image/png;base64," + base64.b64encode(encode_png(source)).decode("ascii")
    if isinstance(source, bytes):
        mime = _sniff(source, "image bytes")
        return f"data:{mime};base64," + base64.b64encode(source).decode("ascii")
    if isinstance(source, str) and source.startswith("data:"):
        mime, data = decode_data_url(source)
        _sniff(data, "image data URL")
        return source
    path = Path(source)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"image path is a directory: {path}") from None
    mime = _sniff(data, f"image file {path}")
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def image_part(source: ImageSource, detail: Detail = None) -> ImagePart:
    """An ``image_url`` content part from any image source."""
    return ImagePart(image_url=ImageURL(url=to_data_url(source), detail=detail))


def to_pil(source: ImageSource) -> Image.Image:
    """Decode any image source to an RGB PIL image (transparency composited on white)."""
    if isinstance(source, Image.Image):
        img = source
    else:
        if isinstance(source, ImagePart):
            source = source.image_url.url
        if isinstance(source, str) and source.startswith("data:"):
            data = decode_data_url(source)[1]
        elif isinstance(source, bytes):
            data = source
        else:
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(f"image file not found: {path}")
            data = path.read_bytes()
        try:
            img = Image.open(io.BytesIO(data))
            img.load()
        except Exception:
            raise ValueError("image data is not an image PIL can read") from None
    if img.mode in ("RGBA", "LA", "P", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB") if img.mode != "RGB" else img


def user_content(text: str, *images: ImageSource, detail: Detail = None) -> list[ContentPart]:
    """Content of a user message: the text, then each image."""
    return [TextPart(text=text), *(image_part(i, detail) for i in images)]


def parse_box(box: str | list[int] | tuple[int, ...], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A crop box ``x0,y0,x1,y1`` (pixels; right/bottom exclusive) checked and clamped to ``size``."""
    if isinstance(box, str):
        try:
            values = [int(round(float(v))) for v in box.replace(" ", "").split(",") if v != ""]
        except ValueError:
            raise ValueError(f"crop box {box!r} must be four numbers x0,y0,x1,y1") from None
    else:
        values = [int(round(v)) for v in box]
    if len(values) != 4:
        raise ValueError(f"crop box must be four numbers x0,y0,x1,y1, got {len(values)}")
    width, height = size
    x0, y0, x1, y1 = max(0, values[0]), max(0, values[1]), min(width, values[2]), min(height, values[3])
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"crop box {values} is empty inside an image of {width}x{height}")
    return x0, y0, x1, y1


class ImageRegistry:
    """The images of one run, by id. Thread-safe: tools may run in worker threads."""

    def __init__(self) -> None:
        self._images: dict[str, Image.Image] = {}
        self._counters: dict[str, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, run: RunContext) -> ImageRegistry:
        """The registry of ``run`` (created on first use)."""
        registry = run.state.get("images")
        if registry is None:
            registry = run.state["images"] = cls()
        if not isinstance(registry, ImageRegistry):
            raise TypeError("run.state['images'] holds something other than an ImageRegistry")
        return registry

    @classmethod
    def from_context(cls, ctx: ToolContext | None) -> ImageRegistry:
        """The registry of the run a tool is called in."""
        if ctx is None or ctx.run is None:
            raise ToolError("image tools only work inside a run (they keep images by id)")
        run = ctx.run[0] if isinstance(ctx.run, tuple) else ctx.run
        return cls.of(run)

    def add(self, image: ImageSource, name: str | None = None, *, prefix: str = "image") -> str:
        """Store an image; returns its id (``name``, or ``prefix-N``). A name is replaced if reused."""
        img = to_pil(image)
        with self._lock:
            if name is None:
                n = self._counters.get(prefix, 0) + 1
                while f"{prefix}-{n}" in self._images:
                    n += 1
                self._counters[prefix] = n
                name = f"{prefix}-{n}"
            elif not re.fullmatch(r"[\w.-]+", name):
                raise ValueError(f"image id {name!r} may hold only letters, digits, '_', '-' and '.'")
            self._images[name] = img
        return name

    def names(self) -> list[str]:
        with self._lock:
            return list(self._images)

    def __contains__(self, name: object) -> bool:
        return name in self._images

    def get(self, ref: str) -> Image.Image:
        """The image a reference names: ``ID`` or ``ID[x0,y0,x1,y1]`` (a crop). Raises ToolError."""
        match = _REF.match(ref or "")
        if match is None:
            raise ToolError(f"bad image reference {ref!r}; write ID or ID[x0,y0,x1,y1]")
        name = match.group("name")
        with self._lock:
            img = self._images.get(name)
            known = ", ".join(self._images) or "none"
        if img is None:
            raise ToolError(f"no image named '{name}' in this run (known: {known})")
        if match.group("box") is None:
            return img
        try:
            return img.crop(parse_box(match.group("box"), img.size))
        except ValueError as exc:
            raise ToolError(f"image reference {ref!r}: {exc}") from None

    def part(self, ref: str, detail: Detail = None) -> ImagePart:
        """The image a reference names, as a content part."""
        return image_part(self.get(ref), detail)
