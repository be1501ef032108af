"""How close a web page comes to a reference, without downloaded weights.

Two modes, one overall score in [0, 1]:

``dom`` (reference HTML known: the benchmark) — Design2Code's model-free metrics
(Si et al., arXiv 2403.03163) with SSIM in the place of CLIP::

    overall = 0.2 * (block_match + text + position + color + ssim)

- Text blocks come from the DOM of the rendered page (a Playwright ``evaluate``): every
  visible text node with its on-screen box and computed colour, grouped by its nearest
  non-inline ancestor; form controls contribute their value or placeholder. Design2Code
  finds the same blocks without OCR by re-colouring text and diffing renders; reading the
  DOM gives them directly.
- Blocks are matched one-to-one (Hungarian, ``scipy.optimize.linear_sum_assignment``) on
  ``difflib.SequenceMatcher`` text similarity with Design2Code's neighbour bonus; pairs
  under 0.5 similarity are dropped. (Design2Code also merges adjacent blocks to repair
  split detections; both sides here come from the same DOM grouping, so we do not.)
- **block_match** = matched block area / all block area of both pages (boxes normalised
  by each page's size); **text** = mean similarity of matched pairs; **position** = mean
  ``1 - max(|dx|, |dy|)`` of normalised block centres; **color** = mean
  ``max(0, 1 - CIEDE2000 / 100)`` of text colours (``skimage.color.deltaE_ciede2000``).
  With no matched block the four are 0.
- **ssim** = ``skimage.metrics.structural_similarity`` of the two screenshots in colour,
  the candidate scaled to the reference width, both padded with white to the same height
  and scaled to 512 pixels wide.

CLIP is absent. Design2Code's fifth term is the cosine of CLIP ViT-B/32 embeddings of the
screenshots with text inpainted away: a judgement of overall look (layout, imagery, colour
masses) that tolerates small shifts. Its weights would have to be downloaded, which our
machines cannot do, so SSIM on the whole screenshot takes its weight: it is stricter about
pixel alignment and blind to semantics ("a photo of a team" vs another photo).

``visual`` (only a screenshot of the reference: ``ui2code`` on a user's image) — blocks
are found in the pixels (edges, merged into word and line boxes by dilation, coloured by
their foreground pixels) and matched on size and position; there is no text, so::

    overall = 0.25 * (block_match + position + color + ssim)
"""

from __future__ import annotations

import difflib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageOps
from pydantic import BaseModel
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from parlswarm.vision.browser import Browser, shared_browser
from parlswarm.vision.images import ImageSource, to_pil

Mode = Literal["dom", "visual"]
MIN_TEXT_SIMILARITY = 0.5  # Design2Code drops matched pairs below this
MIN_BOX_SIMILARITY = 0.5
SSIM_WIDTH = 512

# Returns the text blocks of the page: [{text, x, y, w, h, color: [r, g, b]}] in page pixels.
BLOCKS_JS = r"""
() => {
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 1;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  const rgbCache = new Map();
  const toRgb = (css) => {
    if (rgbCache.has(css)) return rgbCache.get(css);
    ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, 1, 1);
    ctx.fillStyle = css; ctx.fillRect(0, 0, 1, 1);
    const d = ctx.getImageData(0, 0, 1, 1).data;
    const rgb = [d[0], d[1], d[2]];
    rgbCache.set(css, rgb);
    return rgb;
  };
  const visible = (el) => !el.checkVisibility || el.checkVisibility({opacityProperty: true, visibilityProperty: true});
  const containerOf = (el) => {
    for (let e = el; e && e !== document.documentElement; e = e.parentElement) {
      const d = getComputedStyle(e).display;
      if (d !== 'inline' && d !== 'contents') return e;
    }
    return document.body;
  };
  const skip = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'OPTION', 'TITLE', 'TEXTAREA', 'SELECT']);
  const sx = window.scrollX, sy = window.scrollY;
  const groups = new Map();
  const order = [];
  const add = (key, text, r, color) => {
    let g = groups.get(key);
    if (!g) {
      g = {parts: [], x0: r.x0, y0: r.y0, x1: r.x1, y1: r.y1, weights: new Map()};
      groups.set(key, g); order.push(g);
    }
    g.parts.push(text);
    g.x0 = Math.min(g.x0, r.x0); g.y0 = Math.min(g.y0, r.y0);
    g.x1 = Math.max(g.x1, r.x1); g.y1 = Math.max(g.y1, r.y1);
    const k = color.join(',');
    g.weights.set(k, (g.weights.get(k) || 0) + text.length);
  };
  const walker = document.createTreeWalker(document.body || document.documentElement, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.replace(/\s+/g, ' ').trim();
    const parent = node.parentElement;
    if (!text || !parent || skip.has(parent.tagName) || !visible(parent)) continue;
    range.selectNodeContents(node);
    const rects = Array.from(range.getClientRects()).filter((r) => r.width >= 1 && r.height >= 1);
    if (!rects.length) continue;
    const box = {x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity};
    for (const r of rects) {
      box.x0 = Math.min(box.x0, r.left + sx); box.y0 = Math.min(box.y0, r.top + sy);
      box.x1 = Math.max(box.x1, r.right + sx); box.y1 = Math.max(box.y1, r.bottom + sy);
    }
    add(containerOf(parent), text, box, toRgb(getComputedStyle(parent).color));
  }
  for (const el of document.querySelectorAll('input, textarea, select')) {
    if (!visible(el) || (el.type && ['hidden', 'checkbox', 'radio', 'range', 'color', 'file'].includes(el.type))) continue;
    const text = (el.tagName === 'SELECT' ? (el.selectedOptions[0] || {}).text || '' : (el.value || el.placeholder || '')).replace(/\s+/g, ' ').trim();
    const r = el.getBoundingClientRect();
    if (!text || r.width < 1 || r.height < 1) continue;
    add(el, text, {x0: r.left + sx, y0: r.top + sy, x1: r.right + sx, y1: r.bottom + sy}, toRgb(getComputedStyle(el).color));
  }
  return order.map((g) => {
    let best = null, weight = -1;
    for (const [k, w] of g.weights) if (w > weight) { best = k; weight = w; }
    return {text: g.parts.join(' '), x: g.x0, y: g.y0, w: g.x1 - g.x0, h: g.y1 - g.y0, color: best.split(',').map(Number)};
  });
}
"""


class Block(BaseModel):
    """A block of a page: its text (empty for blocks found in pixels), box in pixels, colour."""

    text: str = ""
    x: float
    y: float
    w: float
    h: float
    color: tuple[int, int, int]

    def normalized(self, width: float, height: float) -> tuple[float, float, float, float]:
        return self.x / width, self.y / height, self.w / width, self.h / height


@dataclass
class Page:
    """A rendered page: screenshot and blocks (from its DOM, or from its pixels)."""

    image: Image.Image
    blocks: list[Block]
    html: str | None = None
    mode: Mode = "dom"

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


class Scores(BaseModel):
    """Similarity of a candidate page to a reference; every figure in [0, 1]."""

    mode: Mode
    overall: float
    block_match: float
    text: float | None  # None in visual mode: blocks found in pixels carry no text
    position: float
    color: float
    ssim: float
    matched: int
    reference_blocks: int
    candidate_blocks: int

    def line(self) -> str:
        text = f" text {self.text:.3f} ·" if self.text is not None else ""
        return (
            f"overall {self.overall:.3f} · block {self.block_match:.3f} ·{text} position {self.position:.3f} · "
            f"color {self.color:.3f} · ssim {self.ssim:.3f} ({self.matched}/{self.reference_blocks} blocks matched)"
        )


@dataclass
class Match:
    pairs: list[tuple[int, int, float]] = field(default_factory=list)  # (reference, candidate, similarity)


# -- rendering --------------------------------------------------------------------------------


async def render_page(html: str, width: int = 1024, height: int = 768, browser: Browser | None = None) -> Page:
    """Render ``html`` (whole page) and read its text blocks from the DOM."""
    rendered = await (browser or shared_browser()).render(html, width, height, script=BLOCKS_JS)
    blocks = [Block(**b) for b in rendered.result or []]
    image = Image.open(io.BytesIO(rendered.png)).convert("RGB")
    # Blocks below the kept part of a very long page are out of the picture.
    blocks = [b for b in blocks if b.y < image.height and b.w > 0 and b.h > 0]
    return Page(image=image, blocks=blocks, html=html, mode="dom")


def image_page(image: ImageSource) -> Page:
    """A page known only by its screenshot: blocks are found in the pixels."""
    img = to_pil(image)
    return Page(image=img, blocks=visual_blocks(img), mode="visual")


# -- blocks found in pixels -------------------------------------------------------------------


def visual_blocks(image: Image.Image, edge_threshold: float = 24.0, max_blocks: int = 400) -> list[Block]:
    """Word/line-sized blocks of a screenshot: colour edges merged by dilation, one box each.

    A block's colour is the median of its pixels that differ from the median of its border
    (for text: the text colour; for a filled shape: its fill).
    """
    arr = np.asarray(image.convert("RGB"), dtype=np.int16)
    height, width = arr.shape[:2]
    edges = np.zeros((height, width), dtype=bool)
    edges[:, :-1] |= np.abs(np.diff(arr, axis=1)).max(axis=2) > edge_threshold
    edges[:-1, :] |= np.abs(np.diff(arr, axis=0)).max(axis=2) > edge_threshold
    merged = ndimage.binary_dilation(edges, structure=np.ones((5, 13), dtype=bool))
    labels, _ = ndimage.label(merged)
    blocks: list[Block] = []
    for sl in ndimage.find_objects(labels):
        if sl is None:
            continue
        ys, xs = sl
        y0, y1 = max(0, ys.start + 2), min(height, ys.stop - 2)
        x0, x1 = max(0, xs.start + 6), min(width, xs.stop - 6)  # undo the dilation margin
        if y1 - y0 < 3 or x1 - x0 < 3 or (y1 - y0) * (x1 - x0) < 48:
            continue
        patch = arr[y0:y1, x0:x1].reshape(-1, 3)
        border = np.concatenate([arr[y0, x0:x1], arr[y1 - 1, x0:x1], arr[y0:y1, x0], arr[y0:y1, x1 - 1]])
        background = np.median(border, axis=0)
        foreground = patch[np.abs(patch - background).max(axis=1) > 40]
        color = np.median(foreground, axis=0) if len(foreground) else background
        blocks.append(
            Block(x=x0, y=y0, w=x1 - x0, h=y1 - y0, color=tuple(int(round(c)) for c in color))  # type: ignore[arg-type]
        )
    if len(blocks) > max_blocks:  # keep the largest; matching is cubic in the block count
        blocks = sorted(blocks, key=lambda b: b.w * b.h, reverse=True)[:max_blocks]
        blocks.sort(key=lambda b: (b.y, b.x))
    return blocks


# -- matching ---------------------------------------------------------------------------------


def _text_similarity(reference: Sequence[Block], candidate: Sequence[Block]) -> np.ndarray:
    sim = np.zeros((len(reference), len(candidate)))
    for i, a in enumerate(reference):
        matcher = difflib.SequenceMatcher(None, autojunk=False)
        matcher.set_seq2(a.text)
        for j, b in enumerate(candidate):
            matcher.set_seq1(b.text)
            if matcher.real_quick_ratio() >= MIN_TEXT_SIMILARITY and matcher.quick_ratio() >= MIN_TEXT_SIMILARITY:
                sim[i, j] = matcher.ratio()
    return sim


def _centre_closeness(reference: Page, candidate: Page) -> np.ndarray:
    rw, rh = reference.size
    cw, ch = candidate.size
    rc = np.array([((b.x + b.w / 2) / rw, (b.y + b.h / 2) / rh) for b in reference.blocks]).reshape(-1, 2)
    cc = np.array([((b.x + b.w / 2) / cw, (b.y + b.h / 2) / ch) for b in candidate.blocks]).reshape(-1, 2)
    distance = np.abs(rc[:, None, :] - cc[None, :, :]).max(axis=2)
    return np.clip(1.0 - distance, 0.0, 1.0)


def _size_similarity(reference: Page, candidate: Page) -> np.ndarray:
    rw, rh = reference.size
    cw, ch = candidate.size
    r = np.array([(b.w / rw, b.h / rh) for b in reference.blocks]).reshape(-1, 2)
    c = np.array([(b.w / cw, b.h / ch) for b in candidate.blocks]).reshape(-1, 2)
    ratio = np.minimum(r[:, None, :], c[None, :, :]) / np.maximum(np.maximum(r[:, None, :], c[None, :, :]), 1e-9)
    return ratio.prod(axis=2)


def match_blocks(reference: Page, candidate: Page) -> Match:
    """One-to-one matching of the blocks of two pages (see the module docstring)."""
    if not reference.blocks or not candidate.blocks:
        return Match()
    closeness = _centre_closeness(reference, candidate)
    if reference.mode == "dom" and candidate.mode == "dom":
        similarity = _text_similarity(reference.blocks, candidate.blocks)
        threshold = MIN_TEXT_SIMILARITY
        # Design2Code's context bonus: a pair whose neighbours in document order also match
        # is preferred (consecutive_bonus 0.1, window 1); closeness breaks remaining ties
        # between blocks of equal text ("Learn more", "$29").
        padded = np.pad(similarity, 1)
        neighbours = padded[:-2, :-2] + padded[2:, 2:]
        score = similarity + np.where(similarity >= threshold, 0.1 * neighbours + 0.01 * closeness, 0.0)
    else:
        similarity = 0.5 * _size_similarity(reference, candidate) + 0.5 * closeness
        threshold = MIN_BOX_SIMILARITY
        score = similarity
    rows, cols = linear_sum_assignment(-score)
    pairs = [(int(i), int(j), float(similarity[i, j])) for i, j in zip(rows, cols) if similarity[i, j] >= threshold]
    return Match(pairs=pairs)


# -- scores -----------------------------------------------------------------------------------


def color_similarity(a: Sequence[int], b: Sequence[int]) -> float:
    """``max(0, 1 - CIEDE2000 / 100)`` of two sRGB colours, as Design2Code normalises it."""
    lab = rgb2lab(np.array([[a, b]], dtype=np.float64) / 255.0)
    return max(0.0, 1.0 - float(deltaE_ciede2000(lab[0, 0], lab[0, 1])) / 100.0)


def _canvas_pair(reference: Image.Image, candidate: Image.Image, width: int = SSIM_WIDTH) -> tuple[np.ndarray, np.ndarray]:
    """Both screenshots at the reference's width, padded with white to one height, scaled to ``width``."""
    rw, rh = reference.size
    if candidate.width != rw:
        candidate = candidate.resize((rw, max(1, round(candidate.height * rw / candidate.width))), Image.Resampling.BILINEAR)
    height = max(rh, candidate.height)
    scale = min(1.0, width / rw)
    size = (max(7, round(rw * scale)), max(7, round(height * scale)))

    def prepared(img: Image.Image) -> np.ndarray:
        canvas = Image.new("RGB", (rw, height), (255, 255, 255))
        canvas.paste(img.convert("RGB"), (0, 0))
        return np.asarray(canvas.resize(size, Image.Resampling.BOX), dtype=np.float32)

    return prepared(reference), prepared(candidate)


def ssim(reference: ImageSource, candidate: ImageSource) -> float:
    """Colour SSIM of two screenshots (see the module docstring), clipped to [0, 1]."""
    a, b = _canvas_pair(to_pil(reference), to_pil(candidate))
    value = structural_similarity(a, b, channel_axis=2, data_range=255.0)
    return float(min(1.0, max(0.0, value)))


def score_pages(reference: Page, candidate: Page) -> Scores:
    """Compare two rendered pages; ``dom`` mode when both have DOM blocks, else ``visual``."""
    mode: Mode = "dom" if reference.mode == "dom" and candidate.mode == "dom" else "visual"
    if mode == "visual":
        # Both sides must have blocks found the same way.
        if reference.mode != "visual":
            reference = Page(reference.image, visual_blocks(reference.image), reference.html, "visual")
        if candidate.mode != "visual":
            candidate = Page(candidate.image, visual_blocks(candidate.image), candidate.html, "visual")
    match = match_blocks(reference, candidate)
    rw, rh = reference.size
    cw, ch = candidate.size

    def area(block: Block, width: int, height: int) -> float:
        return (block.w / width) * (block.h / height)

    ref_area = [area(b, rw, rh) for b in reference.blocks]
    cand_area = [area(b, cw, ch) for b in candidate.blocks]
    total = sum(ref_area) + sum(cand_area)
    block_match = text = position = color = 0.0
    if match.pairs and total > 0:
        block_match = sum(ref_area[i] + cand_area[j] for i, j, _ in match.pairs) / total
        closeness = _centre_closeness(reference, candidate)
        text = float(np.mean([s for _, _, s in match.pairs]))
        position = float(np.mean([closeness[i, j] for i, j, _ in match.pairs]))
        color = float(
            np.mean([color_similarity(reference.blocks[i].color, candidate.blocks[j].color) for i, j, _ in match.pairs])
        )
    structural = ssim(reference.image, candidate.image)
    if mode == "dom":
        overall = 0.2 * (block_match + text + position + color + structural)
    else:
        overall = 0.25 * (block_match + position + color + structural)
    return Scores(
        mode=mode,
        overall=round(overall, 6),
        block_match=round(block_match, 6),
        text=round(text, 6) if mode == "dom" else None,
        position=round(position, 6),
        color=round(color, 6),
        ssim=round(structural, 6),
        matched=len(match.pairs),
        reference_blocks=len(reference.blocks),
        candidate_blocks=len(candidate.blocks),
    )


async def score_html(reference: Page, candidate_html: str, browser: Browser | None = None) -> tuple[Scores, Page]:
    """Render ``candidate_html`` at the reference's width and score it; returns the scores and the page."""
    width, height = reference.size
    candidate = await render_page(candidate_html, width, min(height, 1024), browser)
    return score_pages(reference, candidate), candidate


def score_images(reference: ImageSource, candidate: ImageSource) -> Scores:
    """Visual-mode scores of two screenshots."""
    return score_pages(image_page(reference), image_page(candidate))


# -- pictures ---------------------------------------------------------------------------------


def diff_image(reference: ImageSource, candidate: ImageSource) -> Image.Image:
    """The reference, faded, with the pixels that differ from the candidate in red."""
    ref, cand = to_pil(reference), to_pil(candidate)
    if cand.width != ref.width:
        cand = cand.resize((ref.width, max(1, round(cand.height * ref.width / cand.width))), Image.Resampling.BILINEAR)
    height = max(ref.height, cand.height)
    a = Image.new("RGB", (ref.width, height), (255, 255, 255))
    a.paste(ref, (0, 0))
    b = Image.new("RGB", (ref.width, height), (255, 255, 255))
    b.paste(cand, (0, 0))
    delta = ImageChops.difference(a, b).convert("L").point(lambda v: 255 if v > 24 else 0)
    faded = Image.blend(a, Image.new("RGB", a.size, (255, 255, 255)), 0.7)
    return Image.composite(Image.new("RGB", a.size, (220, 20, 60)), faded, delta)


def side_by_side(left: ImageSource, right: ImageSource, labels: tuple[str, str] = ("reference", "rendered")) -> Image.Image:
    """Two screenshots next to each other on one canvas, each under a label."""
    return strip([left, right], list(labels))


def strip(images: Sequence[ImageSource], labels: Sequence[str], column_width: int | None = None) -> Image.Image:
    """Screenshots in a row on one canvas, each under its label; scaled to ``column_width`` if given."""
    pictures = [to_pil(i) for i in images]
    if column_width is not None:
        pictures = [p.resize((column_width, max(1, round(p.height * column_width / p.width))), Image.Resampling.LANCZOS) for p in pictures]
    gap, head = 16, 28
    width = sum(p.width for p in pictures) + gap * (len(pictures) + 1)
    height = max(p.height for p in pictures) + head + 2 * gap
    canvas = Image.new("RGB", (width, height), (236, 238, 242))
    draw = ImageDraw.Draw(canvas)
    x = gap
    for picture, label in zip(pictures, labels):
        canvas.paste(ImageOps.expand(picture, border=1, fill=(160, 164, 172)), (x - 1, gap + head - 1))
        draw.text((x, gap + 6), label, fill=(40, 44, 52))
        x += picture.width + gap
    return canvas
