"""Order ids as the shop writes them, recognised however the customer types them.

PLACEHOLDER IMPLEMENTATION — being replaced (shape inference from the imported orders).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from intents.base import Entity

_CUE = re.compile(r"(?:order|订单号?|#)\s*[:：#]?\s*(?P<id>[A-Za-z0-9][A-Za-z0-9\-]{3,})", re.I)


class OrderIds:
    """Recognises the shop's order ids in messages and spells them as the shop does."""

    def __init__(self, known: Iterable[str] = (), pattern: str | None = None) -> None:
        self._known = {self._key(order_id): order_id for order_id in known}
        self._pattern = re.compile(pattern, re.I) if pattern else None

    @staticmethod
    def _key(raw: str) -> str:
        return re.sub(r"[^0-9A-Za-z]", "", raw).upper()

    def find(self, text: str) -> list[Entity]:
        """Order-id entities in ``text`` (value: the id as the shop writes it)."""
        found: list[Entity] = []
        for match in _CUE.finditer(text):
            raw = match.group("id")
            value = self._known.get(self._key(raw), raw.upper())
            found.append(Entity("order_id", value, match.start("id"), match.end("id"), raw))
        return found

    def canonical(self, raw: str) -> str:
        """The shop's spelling of an id the customer typed (unknown ids: upper-cased, as typed)."""
        return self._known.get(self._key(raw), raw.strip().lstrip("#").upper())

    def example(self) -> str | None:
        """One of the shop's ids, to show in a question ("for example …"); None without orders."""
        return next(iter(self._known.values()), None)
