"""Generate the offline ui2code benchmark: 20 reference pages, their screenshots, and scripts.

    python benchmarks/ui2code/generate.py            # writes pages/, scripted/, manifest.json

Every page is a vertical stack of full-width regions (header, hero, features, ...), written in
plain HTML and CSS with system fonts only (DejaVu, Liberation) and no images or external
requests, so it renders the same offline. Five kinds, four pages each, varied in palette,
fonts, layout and content: landing pages, dashboards, forms, pricing tables, blog layouts.
The same seed gives the same files.

For each page the script also writes ``scripted/<id>.json``: the data a scripted ui2code
policy replays (region boxes, a flawed first draft of every region and its exact fix). It
exists to exercise the pipeline without a multimodal model; it measures no model.
"""

from __future__ import annotations

import argparse
import asyncio
import colorsys
import html as htmllib
import io
import json
import random
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "src"))

from parlswarm.vision.browser import shared_browser  # noqa: E402

WIDTH = 1024
VIEWPORT_HEIGHT = 768
SEED = 20260

# -- styles -----------------------------------------------------------------------------------

PALETTES: list[dict[str, str]] = [
    {"bg": "#ffffff", "surface": "#f4f6fb", "text": "#1f2430", "muted": "#5b6475", "accent": "#3d5afe", "on_accent": "#ffffff", "bar": "#11162a", "on_bar": "#e8ebf5", "border": "#dfe3ec"},
    {"bg": "#fffdf7", "surface": "#f7efe1", "text": "#2d2419", "muted": "#6e604d", "accent": "#c2581c", "on_accent": "#ffffff", "bar": "#fffdf7", "on_bar": "#2d2419", "border": "#e6d9c3"},
    {"bg": "#f6fbf8", "surface": "#e3f2ea", "text": "#16302a", "muted": "#4c6b62", "accent": "#0f8a5f", "on_accent": "#ffffff", "bar": "#0f3d2e", "on_bar": "#d8efe5", "border": "#c6e2d4"},
    {"bg": "#12141c", "surface": "#1c2030", "text": "#e7e9f1", "muted": "#9aa1b8", "accent": "#f5b83d", "on_accent": "#1a1406", "bar": "#0b0d13", "on_bar": "#e7e9f1", "border": "#2c3247"},
    {"bg": "#ffffff", "surface": "#fdf0f4", "text": "#2a1a22", "muted": "#76606b", "accent": "#d81b60", "on_accent": "#ffffff", "bar": "#ffffff", "on_bar": "#2a1a22", "border": "#f1d5df"},
    {"bg": "#f5f7fa", "surface": "#ffffff", "text": "#1b2733", "muted": "#5f6f80", "accent": "#00838f", "on_accent": "#ffffff", "bar": "#00525a", "on_bar": "#e0f4f5", "border": "#d5dde5"},
    {"bg": "#faf8ff", "surface": "#efeafd", "text": "#221b3a", "muted": "#665d85", "accent": "#6a3de8", "on_accent": "#ffffff", "bar": "#221b3a", "on_bar": "#ece8fb", "border": "#ddd4f7"},
    {"bg": "#0e1a24", "surface": "#16283a", "text": "#e3edf5", "muted": "#8fa6ba", "accent": "#4fc3f7", "on_accent": "#06202c", "bar": "#09131b", "on_bar": "#e3edf5", "border": "#24405a"},
    {"bg": "#ffffff", "surface": "#f1f3f1", "text": "#202320", "muted": "#60665f", "accent": "#2e7d32", "on_accent": "#ffffff", "bar": "#f1f3f1", "on_bar": "#202320", "border": "#d9ddd8"},
    {"bg": "#fff8f5", "surface": "#ffe9df", "text": "#33201a", "muted": "#7a5e55", "accent": "#e64a19", "on_accent": "#ffffff", "bar": "#33201a", "on_bar": "#ffe9df", "border": "#f3cfc0"},
]
FONTS = [
    ("DejaVu Sans", "DejaVu Sans"),
    ("DejaVu Serif", "DejaVu Sans"),
    ("Liberation Sans", "Liberation Sans"),
    ("Liberation Serif", "Liberation Serif"),
    ("Liberation Sans Narrow", "Liberation Sans"),
    ("DejaVu Sans Mono", "DejaVu Sans"),
    ("Liberation Serif", "Liberation Sans"),
    ("DejaVu Sans Condensed", "DejaVu Serif"),
]


@dataclass
class Style:
    p: dict[str, str]
    heading_font: str
    body_font: str
    radius: int
    pad: int  # vertical padding of regions
    h1: int
    h2: int
    body: int
    align: str  # "center" or "left" for hero and section titles

    def accent_other(self, rng: random.Random) -> Style:
        other = rng.choice([pal for pal in PALETTES if pal["accent"] != self.p["accent"]])
        return replace(self, p={**self.p, "accent": other["accent"], "on_accent": other["on_accent"]})


def esc(text: str) -> str:
    return htmllib.escape(text, quote=True)


def tint(hex_color: str, amount: float) -> str:
    """Mix a colour with white (amount > 0) or black (amount < 0)."""
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    target = 255 if amount > 0 else 0
    a = abs(amount)
    r, g, b = (round(c + (target - c) * a) for c in (r, g, b))
    return f"#{r:02x}{g:02x}{b:02x}"


def hue_shift(hex_color: str, degrees: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    h, light, s = colorsys.rgb_to_hls(r, g, b)
    r, g, b = colorsys.hls_to_rgb((h + degrees / 360) % 1, light, s)
    return "#" + "".join(f"{round(c * 255):02x}" for c in (r, g, b))


# -- content ----------------------------------------------------------------------------------

BRANDS = ["Northwind", "Lumen", "Harbor", "Quill", "Atlas", "Cobalt", "Fernway", "Pinecrest", "Orbit", "Saltmarsh",
          "Keystone", "Meridian", "Tidewater", "Brightline", "Emberly", "Juniper", "Halcyon", "Ridgeback", "Sable", "Vantage"]
DOMAINS = [
    ("analytics", ["dashboards", "reports", "metrics", "alerts", "funnels", "cohorts"]),
    ("design", ["mockups", "prototypes", "components", "handoff", "comments", "libraries"]),
    ("banking", ["payments", "cards", "savings", "invoices", "transfers", "budgets"]),
    ("writing", ["drafts", "notes", "outlines", "citations", "exports", "reviews"]),
    ("travel", ["itineraries", "bookings", "maps", "receipts", "alerts", "groups"]),
    ("hosting", ["deploys", "domains", "logs", "backups", "scaling", "previews"]),
    ("hiring", ["candidates", "interviews", "offers", "pipelines", "scorecards", "referrals"]),
    ("learning", ["courses", "quizzes", "progress", "certificates", "cohorts", "notes"]),
]
VERBS = ["Track", "Share", "Automate", "Plan", "Review", "Organise", "Launch", "Measure", "Simplify", "Connect"]
ADJ = ["faster", "clearer", "calmer", "safer", "smarter", "simpler", "lighter", "sharper"]
WORDS = ("team work flow every day project clear simple quick secure plan build ship measure learn grow "
         "share review focus detail small large early later open shared private weekly monthly instant").split()
NAMES = ["Ada Brooks", "Ravi Menon", "Lena Ortiz", "Tom Becker", "Mei Chen", "Omar Haddad", "Sara Lind", "Jonas Weber",
         "Nora Kaye", "Iván Soto", "Priya Das", "Ken Ito"]


def sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


@dataclass
class Content:
    brand: str
    domain: str
    things: list[str]
    rng: random.Random

    def feature_title(self, i: int) -> str:
        return f"{VERBS[(i * 3 + len(self.brand)) % len(VERBS)]} {self.things[i % len(self.things)]}"


# -- regions ----------------------------------------------------------------------------------
# Each builder returns (html, css) for one full-width region; css is scoped by the region id.


@dataclass
class Region:
    name: str
    html: str
    css: str
    draft_html: str = ""
    draft_css: str = ""
    flaws: list[str] = field(default_factory=list)


def header(rid: str, st: Style, c: Content, links: list[str], cta: str | None, dark: bool) -> tuple[str, str]:
    bg, fg = (st.p["bar"], st.p["on_bar"]) if dark else (st.p["bg"], st.p["text"])
    items = "".join(f"<a href=\"#\">{esc(link)}</a>" for link in links)
    button = f"<a class=\"btn\" href=\"#\">{esc(cta)}</a>" if cta else ""
    html = (f"<header id=\"{rid}\"><div class=\"logo\"><span class=\"mark\">{esc(c.brand[0])}</span>{esc(c.brand)}</div>"
            f"<nav>{items}</nav>{button}</header>")
    css = (f"#{rid}{{display:flex;align-items:center;gap:32px;padding:18px 48px;background:{bg};color:{fg};"
           f"border-bottom:1px solid {st.p['border']}}}"
           f"#{rid} .logo{{font-family:'{st.heading_font}';font-weight:700;font-size:20px;display:flex;align-items:center;gap:10px}}"
           f"#{rid} .mark{{display:inline-block;width:30px;height:30px;line-height:30px;text-align:center;border-radius:{st.radius}px;"
           f"background:{st.p['accent']};color:{st.p['on_accent']};font-size:16px}}"
           f"#{rid} nav{{display:flex;gap:24px;flex:1;font-size:15px}}#{rid} nav a{{color:{fg};text-decoration:none;opacity:.85}}"
           f"#{rid} .btn{{background:{st.p['accent']};color:{st.p['on_accent']};padding:9px 18px;border-radius:{st.radius}px;"
           f"text-decoration:none;font-size:14px;font-weight:700}}")
    return html, css


def hero(rid: str, st: Style, c: Content, split: bool) -> tuple[str, str]:
    title = f"{rng_pick(c, VERBS)} your {c.things[0]} {rng_pick(c, ADJ)}"
    lead = f"{c.brand} brings {c.things[1]}, {c.things[2]} and {c.things[3]} into one calm place for {c.domain} teams."
    buttons = ("<div class=\"actions\"><a class=\"primary\" href=\"#\">Start free trial</a>"
               "<a class=\"secondary\" href=\"#\">Book a demo</a></div>")
    text = f"<div class=\"copy\"><p class=\"kicker\">{esc(c.domain.upper())} FOR TEAMS</p><h1>{esc(title)}</h1><p class=\"lead\">{esc(lead)}</p>{buttons}</div>"
    art = ""
    if split:
        bars = "".join(f"<span style=\"height:{h}%\"></span>" for h in (40, 65, 52, 80, 70, 92))
        art = (f"<div class=\"art\"><div class=\"card\"><p class=\"label\">{esc(c.things[4].capitalize())} this week</p>"
               f"<p class=\"big\">{c.rng.randint(120, 990)}</p><div class=\"bars\">{bars}</div></div></div>")
    html = f"<section id=\"{rid}\"><div class=\"inner\">{text}{art}</div></section>"
    align = "left" if split else st.align
    css = (f"#{rid}{{background:{st.p['surface']};padding:{st.pad + 24}px 48px}}"
           f"#{rid} .inner{{display:flex;gap:48px;align-items:center;{'' if split else 'justify-content:center;'}}}"
           f"#{rid} .copy{{flex:1;text-align:{align};max-width:{560 if split else 720}px}}"
           f"#{rid} .kicker{{color:{st.p['accent']};font-weight:700;letter-spacing:2px;font-size:13px;margin:0 0 12px}}"
           f"#{rid} h1{{font-family:'{st.heading_font}';font-size:{st.h1}px;line-height:1.15;margin:0 0 18px;color:{st.p['text']}}}"
           f"#{rid} .lead{{font-size:{st.body + 2}px;line-height:1.6;color:{st.p['muted']};margin:0 0 28px}}"
           f"#{rid} .actions{{display:flex;gap:14px;{'justify-content:center;' if align == 'center' else ''}}}"
           f"#{rid} .actions a{{padding:12px 22px;border-radius:{st.radius}px;text-decoration:none;font-weight:700;font-size:15px}}"
           f"#{rid} .primary{{background:{st.p['accent']};color:{st.p['on_accent']}}}"
           f"#{rid} .secondary{{border:2px solid {st.p['accent']};color:{st.p['accent']}}}"
           f"#{rid} .art{{flex:0 0 340px}}#{rid} .card{{background:{st.p['bg']};border:1px solid {st.p['border']};"
           f"border-radius:{st.radius + 4}px;padding:24px}}"
           f"#{rid} .label{{margin:0;color:{st.p['muted']};font-size:14px}}#{rid} .big{{margin:6px 0 16px;font-size:40px;"
           f"font-weight:700;color:{st.p['text']};font-family:'{st.heading_font}'}}"
           f"#{rid} .bars{{display:flex;align-items:flex-end;gap:10px;height:120px}}"
           f"#{rid} .bars span{{flex:1;background:{st.p['accent']};border-radius:4px 4px 0 0;opacity:.85}}")
    return html, css


def rng_pick(c: Content, options: list[str]) -> str:
    return options[(len(c.brand) + len(c.domain)) % len(options)]


def section_title(rid: str, st: Style, title: str, sub: str) -> tuple[str, str]:
    html = f"<div class=\"head\"><h2>{esc(title)}</h2><p>{esc(sub)}</p></div>"
    css = (f"#{rid} .head{{text-align:{st.align};margin-bottom:32px}}"
           f"#{rid} h2{{font-family:'{st.heading_font}';font-size:{st.h2}px;margin:0 0 8px;color:{st.p['text']}}}"
           f"#{rid} .head p{{margin:0;color:{st.p['muted']};font-size:{st.body + 1}px}}")
    return html, css


def features(rid: str, st: Style, c: Content, n: int, cols: int) -> tuple[str, str]:
    head, head_css = section_title(rid, st, f"Everything your {c.domain} team needs", sentence(c.rng, 9))
    cards = "".join(
        f"<div class=\"card\"><span class=\"icon\">{esc(c.feature_title(i)[0])}</span><h3>{esc(c.feature_title(i))}</h3>"
        f"<p>{esc(sentence(c.rng, 12))}</p></div>" for i in range(n))
    html = f"<section id=\"{rid}\">{head}<div class=\"grid\">{cards}</div></section>"
    css = head_css + (
        f"#{rid}{{padding:{st.pad}px 48px;background:{st.p['bg']}}}"
        f"#{rid} .grid{{display:grid;grid-template-columns:repeat({cols},1fr);gap:24px}}"
        f"#{rid} .card{{background:{st.p['surface']};border:1px solid {st.p['border']};border-radius:{st.radius}px;padding:22px}}"
        f"#{rid} .icon{{display:inline-block;width:36px;height:36px;line-height:36px;text-align:center;border-radius:50%;"
        f"background:{st.p['accent']};color:{st.p['on_accent']};font-weight:700}}"
        f"#{rid} h3{{font-family:'{st.heading_font}';font-size:{st.body + 4}px;margin:14px 0 8px;color:{st.p['text']}}}"
        f"#{rid} .card p{{margin:0;color:{st.p['muted']};font-size:{st.body}px;line-height:1.55}}")
    return html, css


def quote(rid: str, st: Style, c: Content) -> tuple[str, str]:
    who = c.rng.choice(NAMES)
    html = (f"<section id=\"{rid}\"><blockquote>“{esc(c.brand)} replaced three tools for us. Our {c.things[0]} are finally "
            f"in one place and the whole team can see them.”</blockquote><p class=\"who\">{esc(who)}, Head of Operations</p></section>")
    css = (f"#{rid}{{padding:{st.pad}px 120px;background:{st.p['bar']};text-align:center}}"
           f"#{rid} blockquote{{margin:0 0 16px;font-family:'{st.heading_font}';font-size:24px;line-height:1.5;color:{st.p['on_bar']}}}"
           f"#{rid} .who{{margin:0;color:{st.p['accent']};font-weight:700;font-size:15px}}")
    return html, css


def cta(rid: str, st: Style, c: Content) -> tuple[str, str]:
    html = (f"<section id=\"{rid}\"><div class=\"box\"><h2>Ready to try {esc(c.brand)}?</h2>"
            f"<p>Free for 14 days. No card needed.</p><a href=\"#\">Create your account</a></div></section>")
    css = (f"#{rid}{{padding:{st.pad}px 48px;background:{st.p['bg']}}}"
           f"#{rid} .box{{background:{st.p['accent']};color:{st.p['on_accent']};border-radius:{st.radius + 6}px;padding:40px;"
           f"display:flex;align-items:center;gap:24px}}"
           f"#{rid} h2{{margin:0;font-family:'{st.heading_font}';font-size:{st.h2 - 2}px;flex:1}}#{rid} p{{margin:0;opacity:.9}}"
           f"#{rid} a{{background:{st.p['on_accent']};color:{st.p['accent']};padding:12px 20px;border-radius:{st.radius}px;"
           f"text-decoration:none;font-weight:700}}")
    return html, css


def footer(rid: str, st: Style, c: Content, columns: int) -> tuple[str, str]:
    heads = ["Product", "Company", "Resources", "Legal"][:columns]
    links = [["Features", "Pricing", "Changelog"], ["About", "Careers", "Press"], ["Docs", "Guides", "Status"], ["Privacy", "Terms", "Security"]]
    cols = "".join(f"<div><h4>{h}</h4>{''.join(f'<p>{x}</p>' for x in links[i])}</div>" for i, h in enumerate(heads))
    html = (f"<footer id=\"{rid}\"><div class=\"cols\"><div class=\"about\"><strong>{esc(c.brand)}</strong>"
            f"<p>{esc(sentence(c.rng, 8))}</p></div>{cols}</div><p class=\"legal\">© 2026 {esc(c.brand)} Inc. All rights reserved.</p></footer>")
    css = (f"#{rid}{{padding:40px 48px 24px;background:{st.p['bar']};color:{st.p['on_bar']};font-size:14px}}"
           f"#{rid} .cols{{display:grid;grid-template-columns:2fr repeat({columns},1fr);gap:24px}}"
           f"#{rid} strong{{font-family:'{st.heading_font}';font-size:18px}}#{rid} h4{{margin:0 0 10px;font-size:14px}}"
           f"#{rid} p{{margin:0 0 6px;opacity:.8}}#{rid} .legal{{margin-top:28px;border-top:1px solid {tint(st.p['bar'], 0.2)};"
           f"padding-top:14px;opacity:.7}}")
    return html, css


def kpis(rid: str, st: Style, c: Content, n: int) -> tuple[str, str]:
    cards = []
    for i in range(n):
        up = c.rng.random() > 0.35
        delta = f"{'+' if up else '−'}{c.rng.randint(2, 24)}.{c.rng.randint(0, 9)}%"
        cards.append(f"<div class=\"kpi\"><p class=\"name\">{esc(c.things[i].capitalize())}</p>"
                     f"<p class=\"value\">{c.rng.randint(1, 98)},{c.rng.randint(100, 999)}</p>"
                     f"<p class=\"delta {'up' if up else 'down'}\">{delta} vs last month</p></div>")
    html = f"<section id=\"{rid}\"><h2>Overview</h2><div class=\"row\">{''.join(cards)}</div></section>"
    css = (f"#{rid}{{padding:28px 32px 8px;background:{st.p['bg']}}}"
           f"#{rid} h2{{margin:0 0 16px;font-family:'{st.heading_font}';font-size:22px;color:{st.p['text']}}}"
           f"#{rid} .row{{display:grid;grid-template-columns:repeat({n},1fr);gap:16px}}"
           f"#{rid} .kpi{{background:{st.p['surface']};border:1px solid {st.p['border']};border-radius:{st.radius}px;padding:16px 18px}}"
           f"#{rid} .name{{margin:0;color:{st.p['muted']};font-size:13px}}"
           f"#{rid} .value{{margin:6px 0;font-size:28px;font-weight:700;color:{st.p['text']};font-family:'{st.heading_font}'}}"
           f"#{rid} .delta{{margin:0;font-size:13px;font-weight:700}}#{rid} .up{{color:#1b9e4b}}#{rid} .down{{color:#d93025}}")
    return html, css


def chart(rid: str, st: Style, c: Content, side_list: bool) -> tuple[str, str]:
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    bars = "".join(f"<div class=\"col\"><span style=\"height:{c.rng.randint(25, 100)}%\"></span><em>{m}</em></div>" for m in months)
    side = ""
    if side_list:
        rows = "".join(f"<li><b>{esc(n)}</b> {esc(c.rng.choice(['updated', 'shared', 'closed', 'opened']))} "
                       f"{esc(c.things[i % len(c.things)])}<i>{c.rng.randint(2, 59)}m</i></li>" for i, n in enumerate(c.rng.sample(NAMES, 5)))
        side = f"<div class=\"panel side\"><h3>Recent activity</h3><ul>{rows}</ul></div>"
    html = (f"<section id=\"{rid}\"><div class=\"panel main\"><h3>{esc(c.things[1].capitalize())} per month</h3>"
            f"<div class=\"bars\">{bars}</div></div>{side}</section>")
    css = (f"#{rid}{{display:flex;gap:16px;padding:16px 32px;background:{st.p['bg']}}}"
           f"#{rid} .panel{{background:{st.p['surface']};border:1px solid {st.p['border']};border-radius:{st.radius}px;padding:18px}}"
           f"#{rid} .main{{flex:2}}#{rid} .side{{flex:1}}"
           f"#{rid} h3{{margin:0 0 14px;font-size:16px;color:{st.p['text']};font-family:'{st.heading_font}'}}"
           f"#{rid} .bars{{display:flex;align-items:flex-end;gap:10px;height:180px}}"
           f"#{rid} .col{{flex:1;display:flex;flex-direction:column;justify-content:flex-end;align-items:center;height:100%}}"
           f"#{rid} .col span{{width:100%;background:{st.p['accent']};border-radius:3px 3px 0 0}}"
           f"#{rid} em{{font-style:normal;font-size:11px;color:{st.p['muted']};margin-top:6px}}"
           f"#{rid} ul{{list-style:none;margin:0;padding:0}}#{rid} li{{font-size:13px;color:{st.p['muted']};padding:8px 0;"
           f"border-bottom:1px solid {st.p['border']}}}#{rid} li b{{color:{st.p['text']}}}#{rid} li i{{float:right;font-style:normal}}")
    return html, css


def table(rid: str, st: Style, c: Content, rows: int) -> tuple[str, str]:
    statuses = [("Paid", "#1b9e4b"), ("Pending", "#e39b00"), ("Failed", "#d93025"), ("Refunded", "#6b7280")]
    body = []
    for _ in range(rows):
        status, color = c.rng.choice(statuses)
        body.append(f"<tr><td>#{c.rng.randint(10000, 99999)}</td><td>{esc(c.rng.choice(NAMES))}</td>"
                    f"<td>{esc(c.things[c.rng.randrange(len(c.things))].capitalize())}</td><td>${c.rng.randint(20, 990)}.00</td>"
                    f"<td><span class=\"pill\" style=\"color:{color};border-color:{color}\">{status}</span></td></tr>")
    html = (f"<section id=\"{rid}\"><div class=\"panel\"><h3>Latest {esc(c.things[0])}</h3><table><thead><tr><th>ID</th><th>Customer</th>"
            f"<th>Item</th><th>Amount</th><th>Status</th></tr></thead><tbody>{''.join(body)}</tbody></table></div></section>")
    css = (f"#{rid}{{padding:16px 32px 32px;background:{st.p['bg']}}}"
           f"#{rid} .panel{{background:{st.p['surface']};border:1px solid {st.p['border']};border-radius:{st.radius}px;padding:18px}}"
           f"#{rid} h3{{margin:0 0 10px;font-size:16px;color:{st.p['text']};font-family:'{st.heading_font}'}}"
           f"#{rid} table{{width:100%;border-collapse:collapse;font-size:14px}}"
           f"#{rid} th{{text-align:left;color:{st.p['muted']};font-weight:600;padding:8px;border-bottom:2px solid {st.p['border']}}}"
           f"#{rid} td{{padding:9px 8px;color:{st.p['text']};border-bottom:1px solid {st.p['border']}}}"
           f"#{rid} .pill{{border:1px solid;border-radius:10px;padding:2px 10px;font-size:12px;font-weight:700}}")
    return html, css


def form(rid: str, st: Style, c: Content, kind: str, two_col: bool, aside: bool) -> tuple[str, str]:
    fields = {
        "signup": [("Full name", "text", "Jane Doe"), ("Work email", "email", "jane@company.com"), ("Company", "text", "Acme Inc."),
                   ("Team size", "select", "11-50 people"), ("Password", "password", "At least 12 characters"), ("Role", "text", "e.g. Product lead")],
        "contact": [("First name", "text", "Jane"), ("Last name", "text", "Doe"), ("Email", "email", "you@example.com"),
                    ("Topic", "select", "Sales question"), ("Message", "textarea", "How can we help?")],
        "checkout": [("Card holder", "text", "Name on card"), ("Card number", "text", "1234 5678 9012 3456"), ("Expiry", "text", "MM / YY"),
                     ("CVC", "text", "123"), ("Country", "select", "Germany"), ("Postcode", "text", "10115")],
    }[kind]
    titles = {"signup": f"Create your {c.brand} account", "contact": f"Talk to the {c.brand} team", "checkout": "Payment details"}
    parts = []
    for label, typ, hint in fields:
        if typ == "select":
            control = f"<select><option>{esc(hint)}</option></select>"
        elif typ == "textarea":
            control = f"<textarea rows=\"4\" placeholder=\"{esc(hint)}\"></textarea>"
        else:
            control = f"<input type=\"{typ}\" placeholder=\"{esc(hint)}\">"
        wide = " wide" if typ == "textarea" else ""
        parts.append(f"<label class=\"field{wide}\"><span>{esc(label)}</span>{control}</label>")
    agree = "<label class=\"check\"><input type=\"checkbox\" checked> I agree to the terms of service</label>"
    submit = {"signup": "Create account", "contact": "Send message", "checkout": f"Pay ${c.rng.randint(19, 199)}.00"}[kind]
    side = ""
    if aside:
        points = "".join(f"<li>{esc(c.feature_title(i))}</li>" for i in range(4))
        side = f"<aside><h3>Why {esc(c.brand)}?</h3><ul>{points}</ul><p>{esc(sentence(c.rng, 10))}</p></aside>"
    html = (f"<section id=\"{rid}\"><div class=\"wrap\"><form><h2>{esc(titles[kind])}</h2><p class=\"sub\">{esc(sentence(c.rng, 8))}</p>"
            f"<div class=\"fields\">{''.join(parts)}</div>{agree}<button type=\"button\">{esc(submit)}</button></form>{side}</div></section>")
    css = (f"#{rid}{{padding:{st.pad}px 48px;background:{st.p['surface']}}}"
           f"#{rid} .wrap{{display:flex;gap:32px;align-items:flex-start;{'justify-content:center;' if not aside else ''}}}"
           f"#{rid} form{{flex:1;max-width:{620 if aside else 680}px;background:{st.p['bg']};border:1px solid {st.p['border']};"
           f"border-radius:{st.radius + 4}px;padding:32px}}"
           f"#{rid} h2{{margin:0 0 6px;font-family:'{st.heading_font}';font-size:{st.h2 - 4}px;color:{st.p['text']}}}"
           f"#{rid} .sub{{margin:0 0 24px;color:{st.p['muted']}}}"
           f"#{rid} .fields{{display:grid;grid-template-columns:{'1fr 1fr' if two_col else '1fr'};gap:16px}}"
           f"#{rid} .field{{display:flex;flex-direction:column;gap:6px;font-size:14px;font-weight:600;color:{st.p['text']}}}"
           f"#{rid} .wide{{grid-column:1/-1}}"
           f"#{rid} input,#{rid} select,#{rid} textarea{{font:inherit;font-weight:400;padding:10px 12px;border:1px solid {st.p['border']};"
           f"border-radius:{max(2, st.radius - 2)}px;background:{st.p['surface']};color:{st.p['text']}}}"
           f"#{rid} .check{{display:flex;gap:8px;align-items:center;margin:20px 0;font-size:14px;color:{st.p['muted']}}}"
           f"#{rid} .check input{{padding:0}}"
           f"#{rid} button{{font:inherit;font-weight:700;border:0;background:{st.p['accent']};color:{st.p['on_accent']};"
           f"padding:12px 24px;border-radius:{st.radius}px}}"
           f"#{rid} aside{{flex:0 0 280px;color:{st.p['text']}}}#{rid} aside h3{{font-family:'{st.heading_font}';margin:8px 0 12px}}"
           f"#{rid} aside li{{margin-bottom:10px;color:{st.p['muted']}}}#{rid} aside p{{color:{st.p['muted']};font-size:14px}}")
    return html, css


def plans(rid: str, st: Style, c: Content, n: int, highlight: int, yearly: bool) -> tuple[str, str]:
    head, head_css = section_title(rid, st, "Simple pricing for every team", f"{'Billed yearly. ' if yearly else ''}{sentence(c.rng, 7)}")
    names = ["Starter", "Team", "Business", "Enterprise"]
    prices = sorted(c.rng.sample(range(9, 99), n - 1)) + ["Custom"]
    cards = []
    for i in range(n):
        price = prices[i]
        amount = f"${price}" if isinstance(price, int) else price
        period = "<span>/ user / month</span>" if isinstance(price, int) else ""
        feats = "".join(f"<li>{esc(c.feature_title(i + k))}</li>" for k in range(3 + i))
        badge = "<p class=\"badge\">Most popular</p>" if i == highlight else ""
        cls = "plan hi" if i == highlight else "plan"
        cards.append(f"<div class=\"{cls}\">{badge}<h3>{names[i]}</h3><p class=\"price\">{amount}{period}</p>"
                     f"<ul>{feats}</ul><a href=\"#\">{'Contact sales' if not isinstance(price, int) else 'Choose ' + names[i]}</a></div>")
    html = f"<section id=\"{rid}\">{head}<div class=\"plans\">{''.join(cards)}</div></section>"
    css = head_css + (
        f"#{rid}{{padding:{st.pad}px 40px;background:{st.p['bg']}}}"
        f"#{rid} .plans{{display:grid;grid-template-columns:repeat({n},1fr);gap:18px;align-items:start}}"
        f"#{rid} .plan{{border:1px solid {st.p['border']};border-radius:{st.radius + 4}px;padding:24px;background:{st.p['surface']}}}"
        f"#{rid} .hi{{border:2px solid {st.p['accent']};background:{st.p['bg']}}}"
        f"#{rid} .badge{{display:inline-block;margin:0 0 8px;background:{st.p['accent']};color:{st.p['on_accent']};"
        f"font-size:12px;font-weight:700;padding:3px 10px;border-radius:10px}}"
        f"#{rid} h3{{margin:0;font-family:'{st.heading_font}';font-size:20px;color:{st.p['text']}}}"
        f"#{rid} .price{{font-size:34px;font-weight:700;margin:10px 0 16px;color:{st.p['text']}}}"
        f"#{rid} .price span{{font-size:13px;font-weight:400;color:{st.p['muted']}}}"
        f"#{rid} ul{{padding-left:18px;margin:0 0 20px;color:{st.p['muted']};font-size:14px;line-height:1.9}}"
        f"#{rid} .plan a{{display:block;text-align:center;padding:10px;border-radius:{st.radius}px;text-decoration:none;font-weight:700;"
        f"border:2px solid {st.p['accent']};color:{st.p['accent']}}}"
        f"#{rid} .hi a{{background:{st.p['accent']};color:{st.p['on_accent']}}}")
    return html, css


def faq(rid: str, st: Style, c: Content, n: int) -> tuple[str, str]:
    questions = ["Can I change plans later?", f"Is there a free trial of {c.brand}?", "Do you offer discounts for non-profits?",
                 f"Where is my {c.domain} data stored?", "How does billing work for new members?", "Can I cancel at any time?"]
    items = "".join(f"<div class=\"qa\"><h4>{esc(q)}</h4><p>{esc(sentence(c.rng, 14))}</p></div>" for q in questions[:n])
    html = f"<section id=\"{rid}\"><h2>Frequently asked questions</h2><div class=\"list\">{items}</div></section>"
    css = (f"#{rid}{{padding:{st.pad}px 48px;background:{st.p['surface']}}}"
           f"#{rid} h2{{text-align:{st.align};font-family:'{st.heading_font}';font-size:{st.h2 - 2}px;margin:0 0 24px;color:{st.p['text']}}}"
           f"#{rid} .list{{display:grid;grid-template-columns:1fr 1fr;gap:16px 32px}}"
           f"#{rid} h4{{margin:0 0 6px;font-size:16px;color:{st.p['text']}}}#{rid} .qa p{{margin:0;color:{st.p['muted']};font-size:14px;line-height:1.5}}")
    return html, css


def comparison(rid: str, st: Style, c: Content, n: int) -> tuple[str, str]:
    names = ["Starter", "Team", "Business", "Enterprise"][:n]
    rows = []
    for i in range(5):
        cells = "".join(f"<td>{'✓' if (i + j) % 3 != 0 or j == n - 1 else '—'}</td>" for j in range(n))
        rows.append(f"<tr><th>{esc(c.feature_title(i + 2))}</th>{cells}</tr>")
    html = (f"<section id=\"{rid}\"><h2>Compare plans</h2><table><thead><tr><th></th>{''.join(f'<td>{x}</td>' for x in names)}</tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table></section>")
    css = (f"#{rid}{{padding:8px 48px {st.pad}px;background:{st.p['bg']}}}"
           f"#{rid} h2{{font-family:'{st.heading_font}';font-size:22px;margin:0 0 16px;color:{st.p['text']}}}"
           f"#{rid} table{{width:100%;border-collapse:collapse;font-size:14px;color:{st.p['text']}}}"
           f"#{rid} th{{text-align:left;font-weight:400;padding:10px;border-bottom:1px solid {st.p['border']}}}"
           f"#{rid} td{{text-align:center;padding:10px;border-bottom:1px solid {st.p['border']}}}"
           f"#{rid} thead td{{font-weight:700;color:{st.p['accent']}}}")
    return html, css


def blog_header(rid: str, st: Style, c: Content, centered: bool) -> tuple[str, str]:
    links = "".join(f"<a href=\"#\">{x}</a>" for x in ["Latest", c.things[0].capitalize(), c.things[1].capitalize(), "Guides", "About"])
    html = (f"<header id=\"{rid}\"><p class=\"name\">The {esc(c.brand)} Journal</p><p class=\"tag\">Notes on {esc(c.domain)}, "
            f"{esc(c.things[2])} and {esc(c.things[3])}</p><nav>{links}</nav></header>")
    css = (f"#{rid}{{padding:32px 48px 0;background:{st.p['bg']};text-align:{'center' if centered else 'left'};"
           f"border-bottom:3px solid {st.p['text']}}}"
           f"#{rid} .name{{margin:0;font-family:'{st.heading_font}';font-size:40px;font-weight:700;color:{st.p['text']}}}"
           f"#{rid} .tag{{margin:6px 0 18px;color:{st.p['muted']};font-style:italic}}"
           f"#{rid} nav{{display:flex;gap:28px;padding:12px 0;border-top:1px solid {st.p['border']};"
           f"{'justify-content:center;' if centered else ''}}}"
           f"#{rid} nav a{{color:{st.p['text']};text-decoration:none;font-size:14px;font-weight:700;text-transform:uppercase;letter-spacing:1px}}")
    return html, css


def featured(rid: str, st: Style, c: Content) -> tuple[str, str]:
    author = c.rng.choice(NAMES)
    html = (f"<section id=\"{rid}\"><div class=\"art\"><span>{esc(c.things[3][0].upper())}</span></div><div class=\"text\">"
            f"<p class=\"cat\">Featured · {esc(c.things[3].capitalize())}</p><h1>How we rebuilt our {esc(c.things[3])} in six weeks</h1>"
            f"<p class=\"ex\">{esc(sentence(c.rng, 22))}</p><p class=\"meta\">By {esc(author)} · {c.rng.randint(4, 14)} min read</p></div></section>")
    css = (f"#{rid}{{display:flex;gap:36px;align-items:center;padding:{st.pad}px 48px;background:{st.p['bg']}}}"
           f"#{rid} .art{{flex:0 0 380px;height:240px;border-radius:{st.radius}px;background:{st.p['accent']};display:flex;"
           f"align-items:center;justify-content:center}}#{rid} .art span{{font-size:96px;font-weight:700;color:{st.p['on_accent']};"
           f"font-family:'{st.heading_font}'}}"
           f"#{rid} .cat{{margin:0;color:{st.p['accent']};font-weight:700;font-size:13px;text-transform:uppercase}}"
           f"#{rid} h1{{margin:10px 0 14px;font-family:'{st.heading_font}';font-size:{st.h1 - 6}px;line-height:1.2;color:{st.p['text']}}}"
           f"#{rid} .ex{{margin:0 0 14px;color:{st.p['muted']};line-height:1.6}}#{rid} .meta{{margin:0;font-size:13px;color:{st.p['muted']}}}")
    return html, css


def posts(rid: str, st: Style, c: Content, n: int, sidebar: bool) -> tuple[str, str]:
    items = []
    for i in range(n):
        items.append(f"<article><p class=\"cat\">{esc(c.things[(i + 1) % len(c.things)].capitalize())}</p>"
                     f"<h3>{esc(c.feature_title(i + 1))} without the busywork</h3><p>{esc(sentence(c.rng, 16))}</p>"
                     f"<p class=\"meta\">{esc(c.rng.choice(NAMES))} · {c.rng.randint(1, 28)} March 2026</p></article>")
    side = ""
    if sidebar:
        cats = "".join(f"<li>{esc(t.capitalize())} <b>{c.rng.randint(3, 40)}</b></li>" for t in c.things[:5])
        side = (f"<aside><div class=\"box\"><h4>Topics</h4><ul>{cats}</ul></div><div class=\"box news\"><h4>Newsletter</h4>"
                f"<p>One email a week. No spam.</p><input placeholder=\"Your email\"><button type=\"button\">Subscribe</button></div></aside>")
    html = f"<section id=\"{rid}\"><div class=\"list\">{''.join(items)}</div>{side}</section>"
    css = (f"#{rid}{{display:flex;gap:36px;padding:8px 48px {st.pad}px;background:{st.p['bg']}}}"
           f"#{rid} .list{{flex:1;display:grid;grid-template-columns:{'1fr' if sidebar else '1fr 1fr'};gap:0 32px}}"
           f"#{rid} article{{padding:18px 0;border-top:1px solid {st.p['border']}}}"
           f"#{rid} .cat{{margin:0;color:{st.p['accent']};font-size:12px;font-weight:700;text-transform:uppercase}}"
           f"#{rid} h3{{margin:6px 0;font-family:'{st.heading_font}';font-size:21px;color:{st.p['text']}}}"
           f"#{rid} article p{{margin:0 0 6px;color:{st.p['muted']};line-height:1.5;font-size:15px}}#{rid} .meta{{font-size:13px}}"
           f"#{rid} aside{{flex:0 0 260px}}#{rid} .box{{background:{st.p['surface']};border-radius:{st.radius}px;padding:18px;margin-top:18px}}"
           f"#{rid} h4{{margin:0 0 10px;color:{st.p['text']}}}#{rid} ul{{list-style:none;padding:0;margin:0}}"
           f"#{rid} li{{display:flex;justify-content:space-between;padding:6px 0;color:{st.p['muted']};font-size:14px}}"
           f"#{rid} .news p{{color:{st.p['muted']};font-size:14px;margin:0 0 10px}}"
           f"#{rid} .news input{{width:100%;box-sizing:border-box;padding:9px;border:1px solid {st.p['border']};border-radius:4px;margin-bottom:8px}}"
           f"#{rid} .news button{{width:100%;padding:9px;border:0;border-radius:4px;background:{st.p['accent']};color:{st.p['on_accent']};font-weight:700}}")
    return html, css


# -- pages ------------------------------------------------------------------------------------

KINDS = ["landing", "dashboard", "form", "pricing", "blog"]


def page_regions(kind: str, variant: int, st: Style, c: Content) -> list[tuple[str, Any]]:
    """(name, builder(style) -> (html, css)) for each region, top to bottom."""
    rng = c.rng
    links = ["Product", "Solutions", "Pricing", "Customers", "Docs"][: 3 + variant % 3]
    dark_bar = variant % 2 == 1
    top = ("header", lambda s: header("top", s, c, links, "Sign in" if variant % 2 == 0 else "Get started", dark_bar))
    if kind == "landing":
        out = [top, ("hero", lambda s: hero("hero", s, c, split=variant in (1, 3)))]
        out.append(("features", lambda s: features("features", s, c, n=[3, 4, 6, 3][variant], cols=[3, 2, 3, 3][variant])))
        if variant in (0, 2):
            out.append(("quote", lambda s: quote("quote", s, c)))
        out.append(("cta", lambda s: cta("cta", s, c)))
        out.append(("footer", lambda s: footer("footer", s, c, columns=2 + variant % 3)))
        return out
    if kind == "dashboard":
        return [
            ("header", lambda s: header("top", s, c, ["Overview", "Reports", "Customers", "Settings"][: 2 + variant % 3], None, True)),
            ("kpis", lambda s: kpis("kpis", s, c, n=[4, 3, 4, 3][variant])),
            ("chart", lambda s: chart("chart", s, c, side_list=variant != 1)),
            ("table", lambda s: table("orders", s, c, rows=[5, 6, 4, 5][variant])),
        ]
    if kind == "form":
        form_kind = ["signup", "contact", "checkout", "signup"][variant]
        out = [top, ("form", lambda s: form("main", s, c, form_kind, two_col=variant != 1, aside=variant in (0, 2)))]
        if variant in (1, 3):
            out.append(("footer", lambda s: footer("footer", s, c, columns=2)))
        return out
    if kind == "pricing":
        n = [3, 4, 3, 3][variant]
        out = [top, ("plans", lambda s: plans("plans", s, c, n=n, highlight=1, yearly=variant % 2 == 0))]
        if variant in (0, 3):
            out.append(("compare", lambda s: comparison("compare", s, c, n=n)))
        out.append(("faq", lambda s: faq("faq", s, c, n=[4, 6, 4, 2][variant])))
        out.append(("footer", lambda s: footer("footer", s, c, columns=3)))
        return out
    # blog
    out = [("header", lambda s: blog_header("masthead", s, c, centered=variant % 2 == 0)),
           ("featured", lambda s: featured("featured", s, c)),
           ("posts", lambda s: posts("posts", s, c, n=[3, 4, 4, 3][variant], sidebar=variant != 1))]
    if variant >= 2:
        out.append(("footer", lambda s: footer("footer", s, c, columns=2 + variant % 2)))
    del rng
    return out


BASE_CSS = ("*{{box-sizing:border-box}}html{{background:{bg}}}body{{margin:0;font-family:'{body_font}';font-size:{body}px;"
            "color:{text};background:{bg};line-height:1.4}}")


def base_css(st: Style) -> str:
    return BASE_CSS.format(bg=st.p["bg"], body_font=st.body_font, body=st.body, text=st.p["text"])


def document(title: str, head_css: str, regions: list[tuple[str, str]]) -> str:
    css = head_css + "".join(css for _, css in regions)
    body = "\n".join(html for html, _ in regions)
    return (f"<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{esc(title)}</title>\n"
            f"<style>\n{css}\n</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def draft_style(st: Style, rng: random.Random) -> tuple[Style, list[str]]:
    """A first draft's flaws: what a model typically gets wrong about one region."""
    options = ["accent", "padding", "headings", "font", "align"]
    chosen = rng.sample(options, 2)
    s = st
    for flaw in chosen:
        if flaw == "accent":
            s = s.accent_other(rng)
        elif flaw == "padding":
            s = replace(s, pad=max(16, int(s.pad * 0.55)))
        elif flaw == "headings":
            s = replace(s, h1=s.h1 - 10, h2=s.h2 - 8)
        elif flaw == "font":
            s = replace(s, heading_font="DejaVu Serif" if "Serif" not in s.heading_font else "DejaVu Sans")
        elif flaw == "align":
            s = replace(s, align="left" if s.align == "center" else "center")
    return s, chosen


def build_page(index: int) -> dict[str, Any]:
    kind = KINDS[index % len(KINDS)]
    variant = index // len(KINDS)
    rng = random.Random(SEED + index)
    domain, things = DOMAINS[index % len(DOMAINS)]
    things = rng.sample(things, len(things))
    c = Content(brand=BRANDS[index], domain=domain, things=things, rng=rng)
    heading_font, body_font = FONTS[(index * 3) % len(FONTS)]
    st = Style(
        p=PALETTES[(index * 7) % len(PALETTES)],
        heading_font=heading_font,
        body_font=body_font,
        radius=rng.choice([0, 4, 8, 12]),
        pad=rng.choice([40, 56, 64]),
        h1=rng.choice([40, 44, 48]),
        h2=rng.choice([28, 30, 32]),
        body=rng.choice([15, 16]),
        align=rng.choice(["center", "left"]),
    )
    page_id = f"{kind}-{variant + 1:02d}"
    builders = page_regions(kind, variant, st, c)
    # Each region draws its content from its own random stream, so draft and final share it.
    finals, drafts = [], []
    draft_rng = random.Random(SEED * 7 + index)
    for k, (name, build) in enumerate(builders):
        c.rng = random.Random(f"{SEED}-{index}-{k}")
        finals.append((name, build(st)))
        c.rng = random.Random(f"{SEED}-{index}-{k}")
        s, flaws = draft_style(st, draft_rng)
        drafts.append((name, build(s), flaws))
    title = f"{c.brand} — {kind}"
    html = document(title, base_css(st), [f for _, f in finals])
    return {
        "id": page_id,
        "kind": kind,
        "title": title,
        "fonts": sorted({st.heading_font, st.body_font}),
        "palette": st.p,
        "html": html,
        "base_css": base_css(st),
        "regions": [
            {"name": name, "html": f[0], "css": f[1], "draft_html": d[0], "draft_css": d[1], "flaws": flaws}
            for (name, f), (_, d, flaws) in zip(finals, drafts)
        ],
    }


REGION_BOXES_JS = """
() => Array.from(document.body.children).map((el) => {
  const r = el.getBoundingClientRect();
  return {top: r.top + window.scrollY, bottom: r.bottom + window.scrollY};
})
"""


def optimise_png(png: bytes) -> bytes:
    img = Image.open(io.BytesIO(png)).convert("RGB")
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


async def generate(out: Path, count: int) -> list[dict[str, Any]]:
    browser = shared_browser()
    pages_dir = out / "pages"
    scripted_dir = out / "scripted"
    pages_dir.mkdir(parents=True, exist_ok=True)
    scripted_dir.mkdir(parents=True, exist_ok=True)
    manifest = []
    for index in range(count):
        page = build_page(index)
        rendered = await browser.render(page["html"], WIDTH, VIEWPORT_HEIGHT, script=REGION_BOXES_JS)
        png = optimise_png(rendered.png)
        (pages_dir / f"{page['id']}.html").write_text(page["html"], encoding="utf-8")
        (pages_dir / f"{page['id']}.png").write_bytes(png)
        bands = rendered.result
        regions = []
        for k, region in enumerate(page["regions"]):
            top = 0 if k == 0 else round(bands[k]["top"])
            bottom = rendered.height if k == len(bands) - 1 else round(bands[k + 1]["top"])
            regions.append({
                "name": region["name"],
                "box": [0, top, WIDTH, bottom],
                "draft": f"<style>{region['draft_css']}</style>\n{region['draft_html']}",
                "final": f"<style>{region['css']}</style>\n{region['html']}",
                "flaws": region["flaws"],
            })
        script = {
            "page": page["id"],
            "note": "Replayed by the scripted ui2code policy to exercise the pipeline; it measures no model.",
            "width": WIDTH,
            "title": page["title"],
            "css": page["base_css"],
            "regions": regions,
        }
        (scripted_dir / f"{page['id']}.json").write_text(json.dumps(script, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        manifest.append({
            "id": page["id"],
            "kind": page["kind"],
            "title": page["title"],
            "width": WIDTH,
            "height": rendered.height,
            "fonts": page["fonts"],
            "accent": page["palette"]["accent"],
            "background": page["palette"]["bg"],
            "regions": [r["name"] for r in regions],
            "png_bytes": len(png),
        })
    (out / "manifest.json").write_text(json.dumps({"pages": manifest}, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    browser.close()
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="where pages/, scripted/ and manifest.json go")
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args()
    manifest = asyncio.run(generate(args.out, args.count))
    total = sum(p["png_bytes"] for p in manifest)
    for p in manifest:
        print(f"{p['id']:<14} {p['width']}x{p['height']:<5} {p['png_bytes'] / 1024:6.1f} KiB  {', '.join(p['fonts'])}")
    print(f"{len(manifest)} pages, screenshots {total / 1024 / 1024:.2f} MiB in all")


if __name__ == "__main__":
    main()
