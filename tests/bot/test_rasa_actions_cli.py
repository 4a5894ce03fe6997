"""`deskbot rasa-actions` from the core install: a clear message instead of a traceback."""

from __future__ import annotations

import importlib.util

import pytest

from bot.cli.main import main


@pytest.mark.skipif(importlib.util.find_spec("rasa_sdk") is not None, reason="rasa-sdk installed: it would serve")
def test_without_the_rasa_extra_the_command_says_what_to_install(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", "config.yaml", "rasa-actions", "--port", "5056"]) == 2
    assert "pip install 'deskbot[rasa]'" in capsys.readouterr().err


def test_port_must_be_a_port(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["rasa-actions", "--port", "70000"])
    assert exited.value.code == 2
    assert "not a port number" in capsys.readouterr().err


def test_core_imports_without_rasa_sdk() -> None:
    import bot.app
    import bot.rasa_actions.operations
    import intents.rasa_http

    assert bot.app.build_classifier and intents.rasa_http.RasaHttpClassifier
    assert bot.rasa_actions.operations.TicketOperations
