"""YAML read with libyaml's parser when PyYAML was built with it, the pure-Python one otherwise.

Both accept the same safe subset and build the same values. Every start and every knowledge
reload reads ``config.yaml``, the response templates and the shop's catalog and FAQ; with the
pure-Python parser that was the largest CPU cost of building an app (measured on the demo
shop: see ``bench/startup.py``).
"""

from __future__ import annotations

from typing import IO, Any

import yaml

SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(stream: str | bytes | IO[str] | IO[bytes]) -> Any:
    """``yaml.safe_load`` with the fastest safe loader available."""
    return yaml.load(stream, Loader=SafeLoader)  # noqa: S506 - a safe loader, C or Python
