"""Reading Rasa NLU YAML and CSV test sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from intents.nlu_data import (
    NluData,
    NluDataError,
    TrainingExample,
    load_examples,
    load_nlu_data,
    load_test_csv,
    nlu_files,
    parse_annotated,
    parse_nlu_yaml,
)

DATA = Path(__file__).parent / "data"
MINI = DATA / "mini"


def test_mini_folder_loads_both_languages() -> None:
    data = load_nlu_data(MINI)

    assert data.intents == ("ask_price", "goodbye", "greet", "order_status", "request_return")
    assert len(data.examples) == 80
    assert {ex.language for ex in data.examples} == {"en", "zh"}
    assert [p.parent.name for p in data.sources] == ["en", "zh"]
    assert data.regexes == {"order_id": (r"[Aa]\d{5}",), "ticket": (r"[Tt]-\d{3,}",)}
    # lookups from both files are merged per type
    assert data.lookups["size"][:3] == ("XS", "S", "M")
    assert "中号" in data.lookups["size"]
    assert data.synonyms["medium"] == "M"
    assert data.synonyms["中号"] == "M"


def test_annotations_are_stripped_with_exact_offsets() -> None:
    data = load_nlu_data(MINI)
    annotated = [ex for ex in data.examples if ex.entities]

    assert annotated, "the fixture has annotated examples"
    for ex in annotated:
        assert "[" not in ex.text and "](" not in ex.text
        for ent in ex.entities:
            assert ex.text[ent.start : ent.end] == ent.text
    chinese = next(ex for ex in data.examples if ex.text == "我的订单A10234到哪了")
    assert [(e.type, e.text, e.start, e.end) for e in chinese.entities] == [("order_id", "A10234", 4, 10)]


def test_parse_annotated_forms() -> None:
    text, ents = parse_annotated('send [2](quantity) [Medium](size:M) in [navy]{"entity": "colour", "value": "blue"}')

    assert text == "send 2 Medium in navy"
    assert [(e.type, e.value, e.text) for e in ents] == [
        ("quantity", "2", "2"),
        ("size", "M", "Medium"),
        ("colour", "blue", "navy"),
    ]
    assert text[ents[2].start : ents[2].end] == "navy"


def test_list_form_gives_one_entity_per_item() -> None:
    text, ents = parse_annotated('fly to [Berlin][{"entity": "city", "role": "to"}, {"entity": "place"}]')

    assert text == "fly to Berlin"
    assert [(e.type, e.start, e.end) for e in ents] == [("city", 7, 13), ("place", 7, 13)]


def test_brackets_that_are_not_annotations_stay() -> None:
    text, ents = parse_annotated("[urgent] my order")

    assert text == "[urgent] my order"
    assert ents == ()


def test_value_annotation_becomes_a_synonym() -> None:
    data = parse_nlu_yaml(
        """
nlu:
- intent: ask_price
  examples: |
    - price of the [navy]{"entity": "colour", "value": "blue"} one
    - price of the [blue](colour) one
"""
    )
    assert data.synonyms == {"navy": "blue"}


def test_examples_may_be_a_yaml_list() -> None:
    data = parse_nlu_yaml(
        """
nlu:
- intent: affirm
  examples:
    - "yes"
    - text: sure thing
      metadata: {sentiment: positive}
"""
    )
    assert [ex.text for ex in data.examples] == ["yes", "sure thing"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("nlu:\n- intent: greet\n  examples: |\n    - hi\n  - oops: [\n", "line"),
        ("version: '3.1'\n", "'nlu:'"),
        ("nlu:\n- intent: greet\n  regex: x\n  examples: |\n    - hi\n", "exactly one of"),
        ("nlu:\n- intent: greet\n", "has no 'examples'"),
        ("nlu:\n- intent: greet\n  examples: |\n    - hi\n    hello\n", "does not start with '- '"),
        ("nlu:\n- intent: greet\n  examples: ''\n", "has no examples"),
        ('nlu:\n- intent: greet\n  examples: |\n    - hi [x]{"entity": }\n', "not valid JSON"),
        ('nlu:\n- intent: greet\n  examples: |\n    - hi [x]{"value": "y"}\n', 'needs an "entity"'),
        ("nlu:\n- regex: order_id\n  examples: |\n    - [A-\n", "does not compile"),
        ("nlu:\n- intent: affirm\n  examples:\n    - yes\n", "YAML reads yes/no"),
        (
            "nlu:\n- synonym: M\n  examples: |\n    - medium\n- synonym: L\n  examples: |\n    - Medium\n",
            "already a synonym",
        ),
        ("nlu:\n- just a string\n", "expected a mapping"),
    ],
)
def test_malformed_data_names_file_and_entry(content: str, fragment: str) -> None:
    with pytest.raises(NluDataError) as caught:
        parse_nlu_yaml(content, source="shop/nlu.yml")

    message = str(caught.value)
    assert message.startswith("shop/nlu.yml")
    assert fragment in message
    assert caught.value.source == "shop/nlu.yml"


def test_error_names_the_intent_entry() -> None:
    with pytest.raises(NluDataError) as caught:
        parse_nlu_yaml(
            "nlu:\n- intent: greet\n  examples: |\n    - hi\n- intent: bye\n  examples: |\n    - ok\n    oops\n"
        )
    assert caught.value.entry == "intent 'bye' (entry 2)"


def test_folder_without_nlu_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    with pytest.raises(NluDataError, match="no nlu.yml files"):
        nlu_files(tmp_path)
    with pytest.raises(NluDataError, match="no such file"):
        nlu_files(tmp_path / "missing")


def test_single_file_loads_with_language_from_its_folder() -> None:
    data = load_nlu_data(MINI / "zh" / "nlu.yml")

    assert {ex.language for ex in data.examples} == {"zh"}
    assert len(data.examples) == 40


def test_conflicts_and_duplicates_are_reported() -> None:
    data = NluData(
        examples=(
            TrainingExample("Stop", "cancel"),
            TrainingExample("stop ", "deny"),
            TrainingExample("hi", "greet"),
            TrainingExample("Hi", "greet"),
        )
    )
    assert data.conflicts() == {"stop": ("cancel", "deny")}
    assert data.duplicates() == {"greet: hi": 2}


def test_csv_with_header_bom_and_annotations(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_text(
        '\ufefftext,intent\n"where is [A12345](order_id), please",order_status\n\nhi,greet\n', encoding="utf-8"
    )

    examples = load_test_csv(path)

    assert [(ex.text, ex.intent) for ex in examples] == [("where is A12345, please", "order_status"), ("hi", "greet")]
    assert examples[0].entities[0].value == "A12345"


def test_csv_without_header(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_text("hello,greet\n你好,greet\n", encoding="utf-8")

    assert [ex.text for ex in load_test_csv(path)] == ["hello", "你好"]


def test_csv_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("text,intent\nhello,greet\nbroken row\n", encoding="utf-8")
    with pytest.raises(NluDataError, match=r"bad\.csv: line 3: expected 2 columns"):
        load_test_csv(path)

    path.write_text("text,intent\n,greet\n", encoding="utf-8")
    with pytest.raises(NluDataError, match="line 2"):
        load_test_csv(path)


def test_load_examples_dispatches_on_the_path() -> None:
    assert len(load_examples(DATA / "mini_test.csv")) == 14
    assert len(load_examples(MINI)) == 80
    assert len(load_examples(MINI / "en" / "nlu.yml")) == 40
