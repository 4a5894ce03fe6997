"""Splitting a long reply into Telegram-sized HTML chunks: the shipped split against the old one.

``bot.channels.telegram.render.split_html`` runs on the event loop for every reply longer
than 4,096 characters (an agent pasting a long text, an FAQ answer with a table). The old
split re-rendered the chunk for every token, so its cost grew with the square of the chunk;
the baseline below is that code, kept verbatim, and both must give the same chunks.

Run: ``.venv/bin/python bench/render.py [--repeat N]``
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not shadow the standard library: import from the project root only.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from bot.channels.telegram.render import MAX_MESSAGE_CHARS, _cut_word, _track, escape, split_html  # noqa: E402

_TOKENS = re.compile(r"<[^>]*>|&[#\w]+;|\s+|[^<&\s]+|[<&]")


def split_html_rerendering(markup: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """deskbot's split until 2026-12: the chunk re-rendered for every token (the baseline)."""
    if len(markup) <= limit:
        return [markup] if markup.strip() else []
    chunks: list[str] = []
    opened: list[tuple[str, str]] = []  # tags open where the current chunk starts
    body: list[str] = []  # the current chunk's tokens

    def stack_after(tokens: list[str]) -> list[tuple[str, str]]:
        stack = list(opened)
        for token in tokens:
            _track(token, stack)
        return stack

    def rendered(tokens: list[str]) -> str:
        prefix = "".join(tag for _, tag in opened)
        suffix = "".join(f"</{name}>" for name, _ in reversed(stack_after(tokens)))
        return prefix + "".join(tokens).strip() + suffix

    def cut() -> None:
        nonlocal body, opened
        breaks = [i for i, t in enumerate(body) if t.isspace()]
        at = breaks[-1] if breaks and breaks[-1] > 0 else len(body)
        head, tail = body[:at], body[at:]
        text = rendered(head)
        if re.sub(r"<[^>]*>", "", text).strip():
            chunks.append(text)
        opened = stack_after(head)
        while tail and tail[0].isspace():
            tail.pop(0)
        body = tail

    for token in _TOKENS.findall(markup):
        pieces = _cut_word(token, limit // 2) if len(token) > limit // 2 and not token.startswith("<") else [token]
        for piece in pieces:
            if body and len(rendered(body + [piece])) > limit:
                cut()
                if body and len(rendered(body + [piece])) > limit:
                    cut()  # the words after the last break did not fit either
            if body or not piece.isspace():
                body.append(piece)
    last = rendered(body)
    if re.sub(r"<[^>]*>", "", last).strip():
        chunks.append(last)
    return chunks


def median_ms(split: Callable[[str], list[str]], text: str, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        split(text)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    paragraph = escape("Our return policy: items can be sent back within 30 days & refunded <in full>. ") * 6 + "\n\n"
    texts = {
        "5 KB plain text": escape("word " * 1000),
        "20 KB paragraphs": paragraph * 40,
        "50 KB with <b> tags": ("Lorem ipsum dolor sit amet, <b>consectetur</b> adipiscing elit &amp; more. " * 680),
    }
    print(f"{'text':<22} {'chunks':>6} {'old (baseline)':>15} {'shipped':>10} {'speed-up':>9}")
    for name, text in texts.items():
        chunks = split_html(text)
        assert chunks == split_html_rerendering(text), name
        assert all(len(chunk) <= MAX_MESSAGE_CHARS for chunk in chunks)
        old = median_ms(split_html_rerendering, text, args.repeat)
        new = median_ms(split_html, text, args.repeat)
        print(f"{name:<22} {len(chunks):>6} {old:>12.1f} ms {new:>7.1f} ms {old / new:>8.0f}x")


if __name__ == "__main__":
    main()
