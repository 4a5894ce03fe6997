"""What the bot missed, grouped: similar customer questions together, with counts.

The workspace lists groups, not single messages, so an admin sees that forty customers asked
about PayPal in four wordings and fixes it once. Grouping is plain near-duplicate detection,
not topic modelling: texts are normalised (folded, punctuation dropped, digits made ``#`` so
order numbers and amounts do not split a group, CJK characters as tokens since Chinese has no
spaces), identical normalised texts form one bucket, and buckets — biggest first — join the group
whose leader they resemble most by rapidfuzz's token-set ratio, if enough, else lead a new one. Questions
in different languages never share a group (a phrasing is added for one language).

Input texts must already be masked (``bot.logs.mask``): groups are shown to agents.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rapidfuzz import fuzz, process

from knowledge.additions import tokens
from storage.missed import MissedRow

# Similarity (0–100) at which a wording joins a group. Wordings of one question score 90–100
# ("can I pay with/by paypal" 91, "可以用支付宝付款吗"/"能用支付宝吗" 90, word order, case,
# punctuation and numbers 100); different questions in one frame up to 87 ("the price of the
# hoodie"/"… the jeans" 87, "发货到加拿大"/"发货到澳大利亚" 86.7). A false merge would put two
# questions under one phrasing, a missed merge costs one more click: the bar sits above both
# (tests/knowledge/test_missed.py keeps these pairs).
GROUP_THRESHOLD = 88.0
# A text of one token is compared whole: a single word is contained in too many questions.
_SHORT_TOKENS = 1
MAX_EXAMPLES = 5
_DIGITS = re.compile(r"\d+")


@dataclass(slots=True)
class MissedGroup:
    """Similar missed questions: the most frequent wording stands for them all."""

    ids: list[int]
    text: str
    language: str
    count: int = 0
    customers: int = 0
    handoffs: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    reasons: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)


def group_key(text: str) -> str:
    """The normalised form two wordings must share to be the same bucket."""
    return _DIGITS.sub("#", tokens(text))


def similarity(a: str, b: str) -> float:
    """How alike two normalised texts are (0–100): token-set ratio, or plain ratio when one of
    them is a single token (a lone word is a subset of every question that uses it)."""
    if min(a.count(" "), b.count(" ")) < _SHORT_TOKENS:
        return float(fuzz.ratio(a, b))
    return float(fuzz.token_set_ratio(a, b))


def group(rows: Sequence[MissedRow], threshold: float = GROUP_THRESHOLD) -> list[MissedGroup]:
    """Groups of ``rows`` (masked texts), largest first, then most recent.

    CPU work proportional to rows × groups: call it off the event loop.
    """
    buckets: dict[tuple[str, str], list[MissedRow]] = {}
    for row in rows:
        key = group_key(row.text)
        if key:
            buckets.setdefault((row.language, key), []).append(row)
    # Biggest buckets lead: a group is named after its most common wording.
    ordered = sorted(buckets.items(), key=lambda item: (-len(item[1]), -_latest(item[1]).timestamp()))
    leaders: dict[str, _Leaders] = {}
    members: dict[tuple[str, str], list[list[MissedRow]]] = {}
    for (language, key), bucket in ordered:
        known = leaders.setdefault(language, _Leaders())
        leader = known.match(key, threshold)
        if leader is None:
            leader = key
            known.add(key)
        members.setdefault((language, leader), []).append(bucket)
    groups = [_summary(language, buckets_of) for (language, _), buckets_of in members.items()]
    groups.sort(key=lambda g: (-g.count, -(g.last_seen.timestamp() if g.last_seen else 0)))
    return groups


class _Leaders:
    """The groups' leading keys of one language, compared as :func:`similarity` says, with
    rapidfuzz's own loop (``process.extractOne``): 2,000 mostly distinct wordings (the most
    the workspace groups at once) form ~570 groups in about 1 s on a busy 2-core machine."""

    def __init__(self) -> None:
        self.words: list[str] = []  # one-token keys
        self.phrases: list[str] = []

    def add(self, key: str) -> None:
        (self.words if " " not in key else self.phrases).append(key)

    def match(self, key: str, threshold: float) -> str | None:
        """The most similar leader at ``threshold`` or above, else None."""
        candidates = [
            process.extractOne(key, self.words, scorer=fuzz.ratio, processor=None, score_cutoff=threshold),
            process.extractOne(
                key, self.phrases, scorer=fuzz.ratio if " " not in key else fuzz.token_set_ratio,
                processor=None, score_cutoff=threshold,
            ),
        ]
        found = [c for c in candidates if c is not None]
        return max(found, key=lambda c: c[1])[0] if found else None


def _latest(rows: Sequence[MissedRow]) -> datetime:
    return max(row.created_at for row in rows)


def _summary(language: str, buckets: list[list[MissedRow]]) -> MissedGroup:
    rows = [row for bucket in buckets for row in bucket]
    wordings: Counter[str] = Counter()
    for bucket in buckets:
        # The bucket's latest wording stands for it (the same question, maybe other casing).
        wordings[max(bucket, key=lambda r: r.created_at).text] += len(bucket)
    examples = [text for text, _ in wordings.most_common(MAX_EXAMPLES)]
    return MissedGroup(
        ids=[row.id for row in sorted(rows, key=lambda r: r.created_at, reverse=True)],
        text=examples[0],
        language=language,
        count=len(rows),
        customers=len({row.customer_id for row in rows}),
        handoffs=sum(1 for row in rows if row.handed_off),
        first_seen=min(row.created_at for row in rows),
        last_seen=_latest(rows),
        reasons=dict(Counter(row.reason.value for row in rows).most_common()),
        examples=examples,
    )
