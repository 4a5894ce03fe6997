"""Per-conversation dialogue state kept in the StateStore (expires with its TTL)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class ConversationState:
    language: str = "en"
    form: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    requested_slot: str | None = None
    form_failures: int = 0
    form_stalls: int = 0  # answers in a row that filled no slot
    misunderstood: int = 0
    awaiting_comment_for: int | None = None  # ticket id whose rating may get a comment
    last_intent: str | None = None
    last_product: str | None = None  # sku, so "do you have it in L?" knows what "it" is

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None, default_language: str = "en") -> ConversationState:
        if not raw:
            return cls(language=default_language)
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def end_form(self) -> None:
        self.form = None
        self.slots = {}
        self.requested_slot = None
        self.form_failures = 0
        self.form_stalls = 0
