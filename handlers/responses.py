"""Reply templates per language, kept in YAML beside the code so shops can reword them."""

from __future__ import annotations

from pathlib import Path
from string import Formatter
from typing import Any

from common.errors import ConfigError
from common.yaml_files import safe_load

DEFAULT_DIR = Path(__file__).with_name("responses")


class _SafeDict(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Responses:
    """``responses.text("zh", "ticket_opened", number="T-1001")`` with English fallback."""

    def __init__(self, templates: dict[str, dict[str, str]], fallback: str = "en") -> None:
        if fallback not in templates:
            raise ConfigError(f"responses: no templates for the fallback language {fallback!r}")
        self.templates = templates
        self.fallback = fallback
        missing = {
            lang: sorted(set(templates[fallback]) - set(t)) for lang, t in templates.items() if lang != fallback
        }
        self.missing = {k: v for k, v in missing.items() if v}

    @classmethod
    def load(cls, directory: Path = DEFAULT_DIR, fallback: str = "en") -> Responses:
        templates: dict[str, dict[str, str]] = {}
        for path in sorted(directory.glob("*.yml")):
            raw = safe_load(path.read_text(encoding="utf-8")) or {}
            if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
                raise ConfigError(f"{path}: expected a mapping of key: text")
            for key, text in raw.items():
                try:
                    list(Formatter().parse(text))
                except ValueError as exc:
                    raise ConfigError(f"{path}: template {key!r}: {exc}") from exc
            templates[path.stem] = {str(k): str(v) for k, v in raw.items()}
        return cls(templates, fallback)

    def text(self, language: str, key: str, **params: Any) -> str:
        table = self.templates.get(language) or self.templates[self.fallback]
        template = table.get(key) or self.templates[self.fallback].get(key)
        if template is None:
            raise KeyError(f"no response template {key!r}")
        return template.format_map(_SafeDict(params)).strip()
