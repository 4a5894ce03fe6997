"""The SVG charts of the analytics page (bot/web/charts.py)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from bot.web import charts
from bot.web.analytics_page import duration

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))  # well-formed XML, or this raises


def test_stacked_bars_scale_to_the_largest_total() -> None:
    svg = parse(charts.stacked_bars("Messages", ["a", "b"], [charts.Series("in", [2, 4]), charts.Series("out", [2, 0])]))
    assert svg.get("data-chart") == "stacked-bars" and svg.get("role") == "img"
    bars = svg.findall(f"{SVG}rect[@class='bar']")
    assert len(bars) == 3  # a zero value draws nothing
    heights = sorted(float(b.get("height", 0)) for b in bars)
    # axis top is 5 (nice maximum over 4): 2 → 2/5 of the plot, 4 → 4/5
    plot = charts.HEIGHT - charts.TOP - charts.BOTTOM
    assert heights == [plot * 2 / 5, plot * 2 / 5, plot * 4 / 5]
    assert "a · in: 2" in ET.tostring(svg, encoding="unicode")


def test_lines_break_at_missing_values() -> None:
    svg = parse(charts.lines("Tickets", ["1", "2", "3", "4", "5"], [charts.Series("opened", [1, 2, None, 3, 4])]))
    assert len(svg.findall(f"{SVG}polyline")) == 2 and len(svg.findall(f"{SVG}circle")) == 4


def test_labels_are_escaped_text() -> None:
    evil = "<script>alert(1)</script>&\""
    markup = str(charts.distribution(evil, [(evil, 3)]))
    assert "<script>" not in markup
    svg = parse(markup)
    assert svg.findtext(f"{SVG}title") == evil
    assert evil in [t.text for t in svg.findall(f"{SVG}text")]


def test_empty_data_says_so() -> None:
    assert "No data in this range" in str(charts.distribution("Intents", []))
    svg = parse(charts.bars("Times", [], []))
    assert svg.findall(f"{SVG}rect[@class='bar']") == []


def test_no_inline_style_anywhere() -> None:
    """The workspace CSP forbids inline styles; colours are presentation attributes."""
    markup = str(charts.stacked_bars("x", ["d"], [charts.Series("s", [1])])) + str(charts.lines("y", ["d"], []))
    assert not re.search(r"\sstyle=", markup)


def test_durations_read_naturally() -> None:
    assert [duration(s) for s in (None, 5, 600, 610, 7260, 90000)] == ["—", "5 s", "10 min", "10 min 10 s",
                                                                       "2 h 1 min", "1 d 1 h"]
