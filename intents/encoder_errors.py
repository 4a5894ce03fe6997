"""The error both sentence-encoder runtimes raise when the accurate model cannot run.

It lives apart from :mod:`intents.embeddings` (the numpy encoder, which picks a runtime) and
:mod:`intents.onnx_bert` (the ONNX Runtime one) so that both can raise it without importing
each other: ``embeddings`` reaches ``onnx_bert``, never the reverse.
"""

from __future__ import annotations


class EmbeddingsUnavailable(RuntimeError):
    """The accurate classifier's optional dependencies are not installed."""
