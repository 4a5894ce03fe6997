from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings, masked
from common.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_config_is_valid_and_paths_are_absolute() -> None:
    settings = load_settings(ROOT / "config.yaml", environ={})
    assert settings.web.port == 8080
    assert settings.shop.catalog.is_absolute() and settings.shop.catalog.exists()
    assert settings.storage.url.startswith("sqlite+aiosqlite:////")


def test_environment_overrides_any_key() -> None:
    settings = load_settings(
        ROOT / "config.yaml",
        environ={"DESKBOT_WEB__PORT": "9000", "DESKBOT_STATE__BACKEND": "redis", "DESKBOT_LANGUAGES": "[en]"},
    )
    assert settings.web.port == 9000 and settings.state.backend == "redis" and settings.languages == ["en"]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DESKBOT_WEB__PORT": "abc"}, "web.port = 'abc'"),
        ({"DESKBOT_WEB__PORT": "70000"}, "web.port = 70000"),
        ({"DESKBOT_STATE__BACKEND": "mongo"}, "state.backend = 'mongo'"),
        ({"DESKBOT_STORAGE__URL": "mysql://x"}, "storage.url = 'mysql://x'"),
        ({"DESKBOT_WEB__PROT": "1"}, "web.prot: unknown key"),
        ({"DESKBOT_BUSINESS_HOURS__TIMEZONE": "Mars/Olympus"}, "business_hours.timezone"),
        ({"DESKBOT_DEFAULT_LANGUAGE": "zh", "DESKBOT_LANGUAGES": "[en]"}, "default_language"),
    ],
)
def test_a_bad_value_names_its_key(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(ROOT / "config.yaml", environ=env)
    assert named in str(error.value)


def test_the_test_suites_switches_are_not_configuration() -> None:
    """CI exports DESKBOT_TEST_REQUIRE_SERVERS=1; a deskbot started beside it must still run."""
    env = {"DESKBOT_TEST_REQUIRE_SERVERS": "1", "DESKBOT_TEST_POSTGRES_URL": "postgresql+asyncpg://x/y"}
    assert load_settings(ROOT / "config.yaml", environ=env) == load_settings(ROOT / "config.yaml", environ={})
    with pytest.raises(ConfigError, match="require_servers: unknown key"):
        load_settings(ROOT / "config.yaml", environ={"DESKBOT_REQUIRE_SERVERS": "1"})


def test_secrets_are_refused_in_the_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("secrets:\n  rest_token: hunter2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="environment"):
        load_settings(config, environ={})


def test_secrets_from_the_environment_are_masked(tmp_path: Path) -> None:
    settings = load_settings(
        ROOT / "config.yaml",
        environ={
            "DESKBOT_SECRETS__REST_TOKEN": "hunter2",
            "DESKBOT_STORAGE__URL": "postgresql+asyncpg://bot:s3cret@db/deskbot",
        },
    )
    assert settings.secrets["rest_token"].get_secret_value() == "hunter2"
    shown = str(masked(settings))
    assert "hunter2" not in shown and "s3cret" not in shown and "hunter2" not in repr(settings)


def test_missing_explicit_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_settings(tmp_path / "nope.yaml", environ={})
    broken = tmp_path / "broken.yaml"
    broken.write_text("web: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(broken, environ={})
