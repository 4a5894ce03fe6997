"""Read Rasa 3 NLU training data (YAML) and ``text,intent`` CSV test sets.

The data stays in Rasa's format so the same files can train a Rasa server; this module
turns them into small typed records and fails loudly, naming the file and the entry, when
an entry is malformed — a silently skipped example is a bug nobody finds.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from common.errors import DeskbotError
from common.yaml_files import safe_load
from intents.base import Entity

logger = logging.getLogger(__name__)

# [text](type), [text](type:value), [text]{"entity": ..., "value": ...},
# [text][{"entity": ...}, {"entity": ...}] — the annotation forms Rasa 3 accepts.
_ANNOTATION = re.compile(
    r"\[(?P<text>[^\]]+?)\]"
    r"(?:\((?P<short>[^)]+)\)|\{(?P<dict>[^}]*)\}|\[(?P<list>\{.*?\}(?:\s*,\s*\{.*?\})*)\])"
)
_LANGUAGE_DIR = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z]{2,4})?$")


class NluDataError(DeskbotError, ValueError):
    """Malformed training or test data; the message names the file and the entry."""

    def __init__(self, message: str, *, source: Path | str | None = None, entry: str | None = None) -> None:
        self.source = str(source) if source is not None else None
        self.entry = entry
        self.reason = message
        where = ": ".join(part for part in (self.source, entry) if part)
        super().__init__(f"{where}: {message}" if where else message)


@dataclass(frozen=True, slots=True)
class TrainingExample:
    """One labelled message; ``text`` has its entity annotations removed."""

    text: str
    intent: str
    entities: tuple[Entity, ...] = ()
    language: str | None = None
    """From the data folder name (``en/nlu.yml``) when known; None means detect it."""


@dataclass(frozen=True, slots=True)
class NluData:
    """Everything an NLU file set declares."""

    examples: tuple[TrainingExample, ...] = ()
    regexes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    lookups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    synonyms: dict[str, str] = field(default_factory=dict)
    """Lower-cased surface form → canonical value."""
    sources: tuple[Path, ...] = ()

    @property
    def intents(self) -> tuple[str, ...]:
        return tuple(sorted({ex.intent for ex in self.examples}))

    def conflicts(self) -> dict[str, tuple[str, ...]]:
        """Texts labelled with more than one intent (case- and space-insensitive).

        Such examples teach the model nothing but noise; they are reported, not dropped,
        because which label is right is the data author's call.
        """
        seen: dict[str, set[str]] = defaultdict(set)
        for ex in self.examples:
            seen[_normal_text(ex.text)].add(ex.intent)
        return {text: tuple(sorted(labels)) for text, labels in seen.items() if len(labels) > 1}

    def duplicates(self) -> dict[str, int]:
        """Texts that appear more than once under the same intent, with their count."""
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for ex in self.examples:
            counts[(_normal_text(ex.text), ex.intent)] += 1
        return {f"{intent}: {text}": n for (text, intent), n in counts.items() if n > 1}

    def merged(self, other: NluData) -> NluData:
        """This data plus another file's; later regex/lookup entries extend earlier ones."""
        regexes = {k: tuple(v) for k, v in self.regexes.items()}
        for name, patterns in other.regexes.items():
            regexes[name] = _unique(regexes.get(name, ()) + patterns)
        lookups = {k: tuple(v) for k, v in self.lookups.items()}
        for name, values in other.lookups.items():
            lookups[name] = _unique(lookups.get(name, ()) + values)
        return NluData(
            examples=self.examples + other.examples,
            regexes=regexes,
            lookups=lookups,
            synonyms={**self.synonyms, **other.synonyms},
            sources=self.sources + other.sources,
        )


def _normal_text(text: str) -> str:
    return " ".join(text.lower().split())


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def parse_annotated(
    text: str, *, source: Path | str | None = None, entry: str | None = None
) -> tuple[str, tuple[Entity, ...]]:
    """Strip Rasa entity annotations from one example, returning plain text and entities."""
    plain: list[str] = []
    entities: list[Entity] = []
    cursor = 0
    offset = 0
    for match in _ANNOTATION.finditer(text):
        plain.append(text[cursor : match.start()])
        offset += match.start() - cursor
        surface = match.group("text")
        start, end = offset, offset + len(surface)
        for entity_type, value in _annotation_targets(match, source=source, entry=entry):
            entities.append(Entity(type=entity_type, value=value or surface, start=start, end=end, text=surface))
        plain.append(surface)
        offset = end
        cursor = match.end()
    plain.append(text[cursor:])
    return "".join(plain), tuple(entities)


def _annotation_targets(
    match: re.Match[str], *, source: Path | str | None, entry: str | None
) -> list[tuple[str, str | None]]:
    short = match.group("short")
    if short is not None:
        entity_type, _, value = short.partition(":")
        if not entity_type.strip():
            raise NluDataError(f"empty entity type in {match.group(0)!r}", source=source, entry=entry)
        return [(entity_type.strip(), value.strip() or None)]
    raw = "{" + match.group("dict") + "}" if match.group("dict") is not None else "[" + match.group("list") + "]"
    try:
        parsed: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise NluDataError(
            f"entity annotation {match.group(0)!r} is not valid JSON: {exc.msg}", source=source, entry=entry
        ) from None
    items = parsed if isinstance(parsed, list) else [parsed]
    targets: list[tuple[str, str | None]] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("entity"), str) or not item["entity"].strip():
            raise NluDataError(
                f'entity annotation {match.group(0)!r} needs an "entity" name', source=source, entry=entry
            )
        value = item.get("value")
        if value is not None and not isinstance(value, (str, int, float)):
            raise NluDataError(
                f"entity annotation {match.group(0)!r} has a non-scalar value", source=source, entry=entry
            )
        targets.append((item["entity"].strip(), None if value is None else str(value)))
    return targets


def _example_lines(raw: Any, *, source: Path | str, entry: str) -> list[str]:
    """The examples of one entry: Rasa's ``- item`` block string, or a YAML list."""
    if isinstance(raw, str):
        lines: list[str] = []
        for number, line in enumerate(raw.splitlines(), start=1):
            stripped = line.strip()
            if not stripped:
                continue
            if not stripped.startswith("-"):
                raise NluDataError(
                    f"example line {number} {stripped!r} does not start with '- '", source=source, entry=entry
                )
            example = stripped[1:].strip()
            if not example:
                raise NluDataError(f"example line {number} is empty", source=source, entry=entry)
            lines.append(example)
        return lines
    if isinstance(raw, list):
        out: list[str] = []
        for number, element in enumerate(raw, start=1):
            item = element.get("text") if isinstance(element, dict) else element
            if not isinstance(item, str):
                raise NluDataError(
                    f"example {number} is {item!r}, not a string (quote it: YAML reads yes/no/on/off as booleans)",
                    source=source,
                    entry=entry,
                )
            if item.strip():
                out.append(item.strip())
        return out
    raise NluDataError("'examples' must be a '- item' block or a list", source=source, entry=entry)


def parse_nlu_yaml(content: str, *, source: Path | str = "<string>", language: str | None = None) -> NluData:
    """Parse the text of one Rasa NLU YAML file."""
    try:
        tree = safe_load(content)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        raise NluDataError(
            f"not valid YAML: {getattr(exc, 'problem', None) or exc}", source=source, entry=where
        ) from None
    if not isinstance(tree, dict) or "nlu" not in tree:
        raise NluDataError("expected a mapping with an 'nlu:' list at the top level", source=source)
    entries = tree["nlu"] or []
    if not isinstance(entries, list):
        raise NluDataError("'nlu' must be a list of entries", source=source)

    examples: list[TrainingExample] = []
    regexes: dict[str, tuple[str, ...]] = {}
    lookups: dict[str, tuple[str, ...]] = {}
    synonyms: dict[str, str] = {}
    kinds = ("intent", "regex", "lookup", "synonym")
    for index, item in enumerate(entries, start=1):
        if not isinstance(item, dict):
            raise NluDataError(f"entry is {item!r}, expected a mapping", source=source, entry=f"entry {index}")
        found = [k for k in kinds if k in item]
        if len(found) != 1:
            raise NluDataError(
                f"expected exactly one of {', '.join(kinds)}, found keys {sorted(map(str, item))}",
                source=source,
                entry=f"entry {index}",
            )
        kind = found[0]
        name = item[kind]
        if not isinstance(name, (str, int, float)) or isinstance(name, bool) or not str(name).strip():
            raise NluDataError(f"{kind} name {name!r} is not a non-empty string", source=source, entry=f"entry {index}")
        name = str(name).strip()
        label = f"{kind} {name!r} (entry {index})"
        if "examples" not in item:
            raise NluDataError("has no 'examples'", source=source, entry=label)
        lines = _example_lines(item["examples"], source=source, entry=label)
        if not lines:
            raise NluDataError("has no examples", source=source, entry=label)
        if kind == "intent":
            for line in lines:
                text, ents = parse_annotated(line, source=source, entry=f"{label}, example {line!r}")
                if not text.strip():
                    raise NluDataError(
                        f"example {line!r} is empty once annotations are removed", source=source, entry=label
                    )
                for ent in ents:
                    if ent.value != ent.text:
                        synonyms.setdefault(ent.text.lower(), ent.value)
                examples.append(TrainingExample(text=text, intent=name, entities=ents, language=language))
        elif kind == "regex":
            for pattern in lines:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise NluDataError(
                        f"pattern {pattern!r} does not compile: {exc}", source=source, entry=label
                    ) from None
            regexes[name] = _unique(regexes.get(name, ()) + tuple(lines))
        elif kind == "lookup":
            lookups[name] = _unique(lookups.get(name, ()) + tuple(lines))
        else:
            for surface in lines:
                key = surface.lower()
                previous = synonyms.get(key)
                if previous is not None and previous != name:
                    raise NluDataError(f"{surface!r} is already a synonym of {previous!r}", source=source, entry=label)
                synonyms[key] = name
    return NluData(
        examples=tuple(examples),
        regexes=regexes,
        lookups=lookups,
        synonyms=synonyms,
        sources=(Path(source),) if not str(source).startswith("<") else (),
    )


def nlu_files(path: Path | str) -> list[Path]:
    """The NLU files a data location stands for: the file itself, or ``*/nlu.yml`` (and ``nlu.yml``) in a folder."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise NluDataError("no such file or folder", source=path)
    files = sorted(path.glob("*/nlu.yml"))
    if (path / "nlu.yml").is_file():
        files.insert(0, path / "nlu.yml")
    if not files:
        raise NluDataError("no nlu.yml files found (expected <language>/nlu.yml)", source=path)
    return files


def _language_of(file: Path) -> str | None:
    name = file.parent.name
    return name.lower().replace("_", "-") if _LANGUAGE_DIR.match(name) else None


def load_nlu_data(path: Path | str) -> NluData:
    """Load one NLU YAML file or every ``<language>/nlu.yml`` under a folder.

    Examples from ``en/nlu.yml`` get ``language="en"``; conflicting labels are logged.
    """
    data = NluData()
    for file in nlu_files(path):
        try:
            content = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise NluDataError(f"cannot be read: {exc}", source=file) from None
        data = data.merged(parse_nlu_yaml(content, source=file, language=_language_of(file)))
    conflicts = data.conflicts()
    if conflicts:
        logger.warning(
            "%d training texts carry more than one intent, e.g. %s",
            len(conflicts),
            "; ".join(f"{t!r} → {', '.join(i)}" for t, i in list(conflicts.items())[:3]),
        )
    return data


def load_test_csv(path: Path | str) -> list[TrainingExample]:
    """Read a ``text,intent`` CSV (header optional, UTF-8, annotations allowed in ``text``)."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise NluDataError(f"cannot be read as CSV: {exc}", source=path) from None
    if rows and [cell.strip().lower() for cell in rows[0][:2]] == ["text", "intent"]:
        rows = rows[1:]
        first_line = 2
    else:
        first_line = 1
    examples: list[TrainingExample] = []
    for number, row in enumerate(rows, start=first_line):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise NluDataError(f"expected 2 columns (text,intent), got {len(row)}", source=path, entry=f"line {number}")
        raw_text, intent = row[0].strip(), row[1].strip()
        if not raw_text or not intent:
            raise NluDataError("text and intent must both be non-empty", source=path, entry=f"line {number}")
        text, entities = parse_annotated(raw_text, source=path, entry=f"line {number}")
        examples.append(TrainingExample(text=text, intent=intent, entities=entities))
    if not examples:
        raise NluDataError("contains no examples", source=path)
    return examples


def load_examples(path: Path | str) -> list[TrainingExample]:
    """Labelled examples from a CSV file, one NLU YAML file or a data folder."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return load_test_csv(path)
    return list(load_nlu_data(path).examples)
