"""Tell Chinese from English by the share of Han characters — no model, no download.

The bot speaks two languages, and in them script is destiny: a message that is mostly
Han characters is Chinese. Everything else (including empty text) is English, the default.
"""

from __future__ import annotations

import re
from typing import Literal

Language = Literal["zh", "en"]

_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
_LETTER = re.compile(r"[^\W\d_]")
_SAMPLE_CHARS = 2000

# One Han character carries about as much as a short English word (~3 letters), so a
# message like "我的订单KX-20417呢" or "卫衣 price?" counts as Chinese while
# "do you sell 卫衣" stays English.
_LETTERS_PER_HAN = 3


def detect_language(text: str) -> Language:
    """``"zh"`` when Han characters carry at least as much text as other letters, else ``"en"``."""
    sample = text[:_SAMPLE_CHARS]
    han = len(_HAN.findall(sample))
    if han == 0:
        return "en"
    letters = len(_LETTER.findall(sample)) - han
    return "zh" if han * _LETTERS_PER_HAN >= letters else "en"


def normalise_language_tag(tag: str) -> str:
    """``"zh-Hans-CN"`` → ``"zh"``, ``"EN_us"`` → ``"en"``: platform hints carry regions and scripts."""
    return tag.strip().replace("_", "-").split("-", 1)[0].lower()
