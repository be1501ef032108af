"""The similarity metrics are sane on the benchmark set, and their parts do what they say.

The degradation chain runs on one page of each kind by default (about 20 s); set
PARLSWARM_VISION_FULL=1 to run it on all 20 pages.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from parlswarm.vision.browser import Browser, BrowserError, shared_browser
from parlswarm.vision.degrade import BLANK_HTML, LEVELS, degrade
from parlswarm.vision.metrics import (
    Block,
    Page,
    color_similarity,
    diff_image,
    image_page,
    match_blocks,
    render_page,
    score_html,
    score_pages,
    side_by_side,
    ssim,
)

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "ui2code"
PAGES = [p["id"] for p in json.loads((BENCH / "manifest.json").read_text())["pages"]]
QUICK = ["landing-02", "dashboard-01", "form-03", "pricing-04", "blog-01"]
CHAIN_PAGES = PAGES if os.environ.get("PARLSWARM_VISION_FULL") else QUICK


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    yield shared_browser()  # one Chromium for the whole session; closed at exit


def _reference(page_id: str) -> tuple[str, Image.Image]:
    html = (BENCH / "pages" / f"{page_id}.html").read_text(encoding="utf-8")
    return html, Image.open(BENCH / "pages" / f"{page_id}.png").convert("RGB")


async def _reference_page(page_id: str, browser: Browser) -> Page:
    """The committed screenshot, with the text blocks of the reference HTML."""
    html, png = _reference(page_id)
    rendered = await render_page(html, png.width, min(png.height, 1024), browser)
    return Page(png, rendered.blocks, html, "dom")


def test_benchmark_set_has_twenty_pages_of_five_kinds() -> None:
    manifest = json.loads((BENCH / "manifest.json").read_text())["pages"]
    assert len(manifest) == 20
    assert {p["kind"] for p in manifest} == {"landing", "dashboard", "form", "pricing", "blog"}
    total = sum((BENCH / "pages" / f"{p['id']}.png").stat().st_size for p in manifest)
    assert total < 4 * 1024 * 1024
    for p in manifest:
        html = (BENCH / "pages" / f"{p['id']}.html").read_text()
        assert "http://" not in html and "https://" not in html  # self-contained


async def test_every_reference_page_scores_at_least_099_against_its_own_screenshot(browser: Browser) -> None:
    for page_id in PAGES:
        html, png = _reference(page_id)
        rendered = await render_page(html, png.width, min(png.height, 1024), browser)
        assert rendered.size == png.size, page_id
        scores = score_pages(Page(png, rendered.blocks, html, "dom"), rendered)
        assert scores.mode == "dom" and scores.overall >= 0.99, (page_id, scores.line())
        assert scores.reference_blocks >= 10, page_id


@pytest.mark.parametrize("page_id", CHAIN_PAGES)
async def test_degraded_variants_score_strictly_lower_in_order(page_id: str, browser: Browser) -> None:
    reference = await _reference_page(page_id, browser)
    html = reference.html
    assert html is not None
    overall = [(await score_html(reference, html, browser))[0].overall]
    for level in range(1, len(LEVELS) + 1):
        scores, _ = await score_html(reference, await degrade(html, level, browser=browser), browser)
        overall.append(scores.overall)
    blank, _ = await score_html(reference, BLANK_HTML, browser)
    overall.append(blank.overall)
    assert overall[0] >= 0.99
    assert all(a > b for a, b in zip(overall, overall[1:])), dict(zip(["self", *LEVELS, "blank"], overall))
    assert blank.block_match == blank.text == blank.position == blank.color == 0.0


async def test_visual_mode_scores_a_screenshot_without_its_html(browser: Browser) -> None:
    html, png = _reference("landing-01")
    reference = image_page(png)
    assert reference.mode == "visual" and len(reference.blocks) > 20
    same = await render_page(html, png.width, min(png.height, 1024), browser)
    moved = await render_page(await degrade(html, 1, browser=browser), png.width, min(png.height, 1024), browser)
    blank = await render_page(BLANK_HTML, png.width, min(png.height, 1024), browser)
    s_same, s_moved, s_blank = (score_pages(reference, p) for p in (same, moved, blank))
    assert s_same.mode == "visual" and s_same.text is None
    assert s_same.overall >= 0.99 > s_moved.overall > s_blank.overall


async def test_dom_blocks_group_inline_text_skip_hidden_text_and_read_form_controls(browser: Browser) -> None:
    html = """<html><body style="margin:0;font:16px 'DejaVu Sans'">
      <p style="color:#ff0000;margin:10px">Hello <b>bold</b> world</p>
      <p style="display:none">hidden</p><p style="visibility:hidden">invisible</p>
      <div style="color:rgb(0,0,255)">Blue <span style="display:inline-block;color:#00ff00">box</span></div>
      <input placeholder="Your email" style="color:#123456">
    </body></html>"""
    page = await render_page(html, 400, 300, browser)
    texts = {b.text: b for b in page.blocks}
    assert set(texts) == {"Hello bold world", "Blue", "box", "Your email"}
    assert texts["Hello bold world"].color == (255, 0, 0)
    assert texts["Blue"].color == (0, 0, 255) and texts["box"].color == (0, 255, 0)
    hello = texts["Hello bold world"]
    assert 9 <= hello.x <= 11 and 9 <= hello.y <= 11 and hello.w > 100
    assert texts["Your email"].color == (0x12, 0x34, 0x56)


def test_matching_prefers_text_then_position_for_repeated_labels() -> None:
    size = Image.new("RGB", (100, 100))

    def block(text: str, x: float, y: float) -> Block:
        return Block(text=text, x=x, y=y, w=10, h=5, color=(0, 0, 0))

    # Neighbours in document order do not help here, so closeness decides between the twins.
    ref = Page(size, [block("Learn more", 5, 10), block("Pricing", 50, 50), block("Learn more", 5, 60)])
    cand = Page(size, [block("Learn more", 5, 62), block("zzz", 0, 0), block("Learn more", 5, 12), block("Pricing", 52, 50)])
    pairs = {(i, j) for i, j, _ in match_blocks(ref, cand).pairs}
    assert pairs == {(0, 2), (1, 3), (2, 0)}  # the unrelated "zzz" stays unmatched


def test_color_similarity_follows_ciede2000() -> None:
    assert color_similarity((10, 20, 30), (10, 20, 30)) == 1.0
    assert color_similarity((0, 0, 0), (255, 255, 255)) == 0.0  # ΔE00 = 100
    near, far = color_similarity((200, 0, 0), (190, 10, 10)), color_similarity((200, 0, 0), (0, 0, 200))
    assert 0.95 < near < 1.0 and 0.4 < far < 0.6  # red vs blue: ΔE00 ≈ 49


def test_ssim_and_pictures() -> None:
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 255, (120, 200, 3), dtype=np.uint8))
    assert ssim(noise, noise) == 1.0
    assert ssim(noise, noise.resize((100, 60))) < 1.0  # rescaled to the reference width, then compared
    white = Image.new("RGB", (200, 120), "white")
    assert ssim(noise, white) < 0.1
    diff = diff_image(white, noise)
    assert diff.size == (200, 120) and diff.getpixel((0, 0)) in ((220, 20, 60), (255, 255, 255))
    pair = side_by_side(noise, white)
    assert pair.width > 400 and pair.height > 120


async def test_browser_blocks_the_network_and_serves_any_event_loop(browser: Browser) -> None:
    pixel = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    html = (f"<img src='{pixel}'><img src='http://127.0.0.1:9/x.png'>"
            "<script>fetch('https://example.com/').then(() => document.title = 'reached', () => document.title = 'blocked')</script>")
    probe = "() => new Promise((r) => setTimeout(() => r([document.title, document.images[0].naturalWidth, document.images[1].naturalWidth]), 200))"
    rendered = await browser.render(html, 200, 100, script=probe)
    assert rendered.result == ["blocked", 1, 0]
    assert rendered.width == 200 and rendered.png.startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="out of range"):
        await browser.render("<p>x</p>", 5, 5)


def test_missing_chromium_is_one_clear_error() -> None:
    with pytest.raises(BrowserError, match="Chromium not found at /nonexistent/chromium"):
        Browser("/nonexistent/chromium").render_sync("<p>x</p>")
