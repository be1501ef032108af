"""Degraded copies of a page, for checking that the similarity metrics order them sensibly.

Each level applies one more kind of damage, in the browser, to the page's DOM and returns
the resulting HTML: 1 moves blocks, 2 also recolours text and backgrounds, 3 also removes
sections, 4 also changes words; "blank" is an empty page. A sane metric scores the
reference highest, then levels 1, 2, 3, 4 in order, and the blank page lowest.
"""

from __future__ import annotations

from parlswarm.vision.browser import Browser, shared_browser

LEVELS = ("moved", "recolored", "missing", "retexted")
BLANK_HTML = "<!doctype html><html><head><meta charset=\"utf-8\"></head><body></body></html>"

DEGRADE_JS = r"""
(level) => {
  const all = (sel) => Array.from(document.querySelectorAll(sel));
  if (level >= 1) {  // moved blocks: every other heading, paragraph, button and cell shifts
    all('h1, h2, h3, h4, p, button, a, li, td, th, label, blockquote').forEach((el, i) => {
      if (i % 2 === 0) { el.style.position = 'relative'; el.style.left = '56px'; el.style.top = '22px'; }
    });
  }
  if (level >= 2) {  // wrong colours: hues turned half-way round, greys tinted
    const canvas = document.createElement('canvas'); canvas.width = canvas.height = 1;
    const ctx = canvas.getContext('2d', {willReadFrequently: true});
    const rgb = (css) => { ctx.clearRect(0, 0, 1, 1); ctx.fillStyle = css; ctx.fillRect(0, 0, 1, 1); return Array.from(ctx.getImageData(0, 0, 1, 1).data); };
    const hsl = ([r, g, b]) => {
      r /= 255; g /= 255; b /= 255;
      const mx = Math.max(r, g, b), mn = Math.min(r, g, b), l = (mx + mn) / 2, d = mx - mn;
      let h = 0, s = 0;
      if (d) { s = d / (1 - Math.abs(2 * l - 1)); h = mx === r ? ((g - b) / d) % 6 : mx === g ? (b - r) / d + 2 : (r - g) / d + 4; h *= 60; }
      return [(h + 360) % 360, s, l];
    };
    const css = ([h, s, l]) => `hsl(${h.toFixed(1)} ${(s * 100).toFixed(1)}% ${(l * 100).toFixed(1)}%)`;
    const plan = all('body, body *').map((el) => [el, getComputedStyle(el).color, getComputedStyle(el).backgroundColor]);
    for (const [el, color, background] of plan) {
      const [h, s, l] = hsl(rgb(color));
      el.style.color = css([(h + 180) % 360, Math.max(s, 0.65), Math.min(Math.max(l, 0.35), 0.55)]);
      const bg = rgb(background);
      if (bg[3] > 0) { const [bh, bs, bl] = hsl(bg); el.style.backgroundColor = css([(bh + 180 + (bs < 0.1 ? 30 : 0)) % 360, Math.max(bs, 0.25), bl]); }
    }
  }
  if (level >= 3) {  // missing sections: every second region after the first goes
    Array.from(document.body.children).filter((el) => el.tagName !== 'SCRIPT' && el.tagName !== 'STYLE')
      .forEach((el, i) => { if (i % 2 === 1) el.remove(); });
  }
  if (level >= 4) {  // changed text: every second word of every text is replaced
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const swap = (w) => w.split('').map((ch) => /[a-z]/i.test(ch) ? String.fromCharCode((ch.toLowerCase().charCodeAt(0) - 97 + 13) % 26 + 97) : ch).join('');
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      node.textContent = node.textContent.split(/(\s+)/).map((w, i) => (i % 4 === 2 ? swap(w) : w)).join('');
    }
    all('input, textarea').forEach((el) => { if (el.placeholder) el.placeholder = el.placeholder.split('').reverse().join(''); });
  }
  return '<!doctype html>\n' + document.documentElement.outerHTML;
}
"""


async def degrade(html: str, level: int, *, width: int = 1024, browser: Browser | None = None) -> str:
    """``html`` with the first ``level`` kinds of damage of :data:`LEVELS` applied."""
    if not 0 <= level <= len(LEVELS):
        raise ValueError(f"level must be 0..{len(LEVELS)}, not {level}")
    if level == 0:
        return html
    rendered = await (browser or shared_browser()).render(html, width, 768, script=DEGRADE_JS, arg=level, screenshot=False)
    return str(rendered.result)
