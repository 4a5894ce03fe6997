"""The shop's catalog and FAQ, parsed and indexed once per distinct input in a process.

Parsing the two YAML files and indexing them (BM25 per language and field, the product
matcher) is ~80 ms of CPU for the demo shop and grows with the shop. Every app built in one
process used to redo it for the same files: a knowledge reload after an admin's edit that
changed nothing the index reads, and the test suite, which builds an app per test.

The key is everything the result depends on: the files' bytes (never their modification
time, which a quick rewrite can leave unchanged), the admins' additions and the FAQ's
encoders. Order ids are not part of it: they change with every import and are attached
afterwards (``ShopKnowledge.with_order_ids``), so the memo never holds a large id set.
Entries are immutable (``ShopKnowledge`` is swapped whole, never edited), so sharing one
between apps is safe. Call :func:`indexed_knowledge` off the event loop.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from knowledge.additions import Addition, merge
from knowledge.bundle import ShopKnowledge
from knowledge.faq_search import bundled_encoders
from knowledge.shop import KnowledgeError, load_catalog, load_faq

# Two: the knowledge before and after an edit, or two shops' in one test process.
MEMO_SIZE = 2


@dataclass(frozen=True, slots=True)
class Indexed:
    knowledge: ShopKnowledge  # without order ids
    skipped: tuple[tuple[Addition, str], ...]  # additions the files now contradict, and why


_memo: OrderedDict[str, Indexed] = OrderedDict()
_lock = threading.Lock()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KnowledgeError(path, f"cannot read the file ({exc.strerror})") from exc


def _key(files: Sequence[tuple[Path, bytes]], additions: Sequence[Addition], encoders: str | None) -> str:
    digest = hashlib.sha256(repr(encoders).encode())
    for path, content in files:
        digest.update(b"\0" + str(path).encode() + b"\0" + hashlib.sha256(content).digest())
    for addition in additions:
        digest.update(b"\0" + repr(addition).encode())
    return digest.hexdigest()


def indexed_knowledge(
    catalog_path: Path, faq_path: Path, additions: Sequence[Addition], faq_encoders: str | None
) -> Indexed:
    """The catalog and FAQ at these paths with ``additions`` merged in, indexed.

    ``faq_encoders``: ``classifier.chinese_encoder`` when the accurate model's encoders also
    search the FAQ, else None. Raises :class:`KnowledgeError` naming a bad file's entry.
    """
    catalog_bytes, faq_bytes = _read(catalog_path), _read(faq_path)
    key = _key(((catalog_path, catalog_bytes), (faq_path, faq_bytes)), additions, faq_encoders)
    with _lock:
        if (hit := _memo.get(key)) is not None:
            _memo.move_to_end(key)
            return hit
    catalog, faq = load_catalog(catalog_path, catalog_bytes), load_faq(faq_path, faq_bytes)
    skipped: tuple[tuple[Addition, str], ...] = ()
    if additions:
        merged = merge(catalog, faq, additions)
        catalog, faq, skipped = merged.catalog, merged.faq, merged.skipped
    encoders = bundled_encoders(faq_encoders) if faq_encoders is not None else None
    built = Indexed(ShopKnowledge.build(catalog, faq, (), None, encoders), skipped)
    with _lock:
        _memo[key] = built
        while len(_memo) > MEMO_SIZE:
            _memo.popitem(last=False)
    return built
