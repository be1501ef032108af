"""The ``vision`` tool set: render HTML, crop images, compare screenshots.

Images are passed by id (see :class:`~parlswarm.vision.images.ImageRegistry`): a tool that
makes an image stores it in the run's registry and returns its id with the image itself,
so the model sees it and can refer to it later (``crop_image('render-1', ...)``,
``assign_task(..., image='crop-2')``).
"""

from __future__ import annotations

import io

from PIL import Image

from parlswarm.tools import ToolContext, ToolError, Toolset, tool
from parlswarm.types import ContentPart, TextPart
from parlswarm.vision.browser import BrowserError, shared_browser
from parlswarm.vision.images import ImageRegistry, image_part, parse_box
from parlswarm.vision.metrics import diff_image, score_images


async def render_to_image(html: str, width: int, height: int, full_page: bool = True) -> Image.Image:
    """Render self-contained HTML in the shared headless Chromium; returns the screenshot."""
    try:
        rendered = await shared_browser().render(html, width, height, full_page=full_page)
    except (BrowserError, ValueError) as exc:
        raise ToolError(str(exc)) from None
    return Image.open(io.BytesIO(rendered.png)).convert("RGB")


@tool
async def render_html(html: str, ctx: ToolContext, width: int = 1024, height: int = 768, full_page: bool = True) -> list[ContentPart]:
    """Render an HTML page in a headless browser and return its screenshot.

    The browser has no network: every external URL (CDN scripts, web fonts, remote images)
    is blocked, so the page must be self-contained (inline CSS/JS, data: URLs, system fonts).

    Args:
        html: The complete HTML document (or a fragment).
        width: Viewport width in pixels.
        height: Viewport height in pixels; the screenshot covers the whole page when full_page.
        full_page: Capture the whole page rather than only the viewport.
    """
    registry = ImageRegistry.from_context(ctx)
    img = await render_to_image(html, width, height, full_page)
    ref = registry.add(img, prefix="render")
    return [TextPart(text=f"Rendered as image '{ref}' ({img.width}x{img.height} pixels)."), image_part(img)]


@tool
def crop_image(image: str, box: list[int], ctx: ToolContext) -> list[ContentPart]:
    """Crop an image of this run to a box and return the crop as a new image.

    Args:
        image: The id of an image of this run (e.g. 'input', 'render-1').
        box: The crop box in pixels: [x0, y0, x1, y1] (right and bottom exclusive).
    """
    registry = ImageRegistry.from_context(ctx)
    source = registry.get(image)
    try:
        x0, y0, x1, y1 = parse_box(box, source.size)
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    crop = source.crop((x0, y0, x1, y1))
    ref = registry.add(crop, prefix="crop")
    return [TextPart(text=f"Cropped {image}[{x0},{y0},{x1},{y1}] as image '{ref}' ({crop.width}x{crop.height})."), image_part(crop)]


@tool
def compare_images(reference: str, candidate: str, ctx: ToolContext) -> list[ContentPart]:
    """Compare a candidate screenshot with a reference: similarity scores and a diff image.

    Scores are in [0, 1] (1 = identical): block_match, position and color of the blocks
    found in both images, ssim of the whole pictures, and their mean as overall. The diff
    image shows the reference faded with the differing pixels in red.

    Args:
        reference: The id of the reference image (e.g. 'input').
        candidate: The id of the candidate image (e.g. 'render-1').
    """
    registry = ImageRegistry.from_context(ctx)
    ref, cand = registry.get(reference), registry.get(candidate)
    scores = score_images(ref, cand)
    diff = diff_image(ref, cand)
    diff_id = registry.add(diff, prefix="diff")
    text = f"{candidate} vs {reference}: {scores.line()}. Diff image '{diff_id}' (red = differs):"
    return [TextPart(text=text), image_part(diff)]


def vision_toolset() -> Toolset:
    """The ``vision`` menu for ``--tools vision``."""
    return Toolset([render_html, crop_image, compare_images])
