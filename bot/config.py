"""Typed, validated configuration: ``config.yaml`` first, then ``DESKBOT_*`` overrides.

Built once in ``main()`` and passed down explicitly — nothing reads settings at import.
Any key can be overridden from the environment as ``DESKBOT_`` + its path upper-cased
with ``__`` between levels (``DESKBOT_STORAGE__URL``). Secrets (tokens, passwords) are
accepted only from the environment, and masked wherever the config is printed.
"""

from __future__ import annotations

import os
import re
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from common.errors import ConfigError
from common.yaml_files import safe_load
from intents.config import ClassifierConfig

ENV_PREFIX = "DESKBOT_"
# The test suite's own switches (servers and browser required, test server URLs): never config.
TEST_ENV_PREFIX = "DESKBOT_TEST_"
SECRET_KEYS = {"token", "secret", "password", "webhook_secret", "session_secret"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageConfig(Strict):
    url: str = "sqlite+aiosqlite:///var/deskbot.db"
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value


class StateConfig(Strict):
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    ttl_seconds: float = Field(default=3600.0 * 24, gt=0)
    # Ignored (kept so existing config files still load): what was processed is the
    # database's to say (the unique delivery key), see inflight_seconds.
    dedupe_ttl_seconds: float = Field(default=3600.0 * 24, gt=0)
    # A delivery being processed is marked in flight for at most this long (released after
    # the turn); the database's unique delivery key is what makes a message count once.
    inflight_seconds: float = Field(default=10.0, gt=0, le=300)
    key_prefix: str = "deskbot"


class EventsConfig(Strict):
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"


class WebChannelConfig(Strict):
    enabled: bool = True


class RestChannelConfig(Strict):
    enabled: bool = True
    max_message_chars: int = Field(default=4000, gt=0)
    # How a client proves it is the sender it names (a caller with the rest_token Bearer is a
    # trusted server and needs none): ``token`` — deskbot issues a sender token on the first
    # message (X-Deskbot-Sender-Token); ``hmac`` — the shop's backend signs the sender id with
    # secrets.rest_identity_secret (X-Deskbot-Sender-Signature). README: "REST channel".
    sender_proof: Literal["token", "hmac"] = "token"


# What BotFather hands out: the bot's numeric id, a colon, then letters, digits, _ and -.
TELEGRAM_TOKEN_SHAPE = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{1,200}")


def token_problem(token: str) -> str | None:
    """Why ``token`` cannot be a Telegram bot token (never quoting it), or None if it looks like
    one. Checked when the settings load, and again by the Telegram adapters before they open."""
    if TELEGRAM_TOKEN_SHAPE.fullmatch(token):
        return None
    return ("secrets.telegram_token is not a Telegram bot token: expected the form BotFather gives, "
            "<digits>:<letters, digits, _ or ->, e.g. 123456789:AAH... (check DESKBOT_SECRETS__TELEGRAM_TOKEN)")


class RateConfig(Strict):
    """At most ``messages`` in any ``seconds`` (sent evenly: one every seconds/messages)."""

    messages: int = Field(gt=0)
    seconds: float = Field(gt=0)


class SendLimitsConfig(Strict):
    """Telegram's flood limits, kept before sending (``storage/send_limits.py``); with Redis
    state the per-bot budget is shared by every process using the token."""

    enabled: bool = True
    bot: RateConfig = RateConfig(messages=30, seconds=1)  # the whole bot
    private_chat: RateConfig = RateConfig(messages=1, seconds=1)  # one user
    group_chat: RateConfig = RateConfig(messages=20, seconds=60)  # one group, supergroup or channel


class TelegramChannelConfig(Strict):
    """Telegram; the token comes only from ``DESKBOT_SECRETS__TELEGRAM_TOKEN``."""

    enabled: bool = False
    library: Literal["aiogram", "python-telegram-bot"] = "aiogram"
    mode: Literal["polling", "webhook"] = "polling"
    # A self-hosted Bot API server (files up to 2 GB) or a test fake; no /bot suffix.
    api_base: str = "https://api.telegram.org"
    allow_groups: bool = False  # answer customers in group chats too
    # Telegram kinds ("photo") and MIME patterns ("image/*") the shop takes as attachments.
    accepted_media: list[str] = ["photo", "image/*", "application/pdf", "video/*"]
    max_file_mb: int = Field(default=20, gt=0)  # the Bot API's download limit; more with a local server
    agents_chat_id: int | None = None  # the agents' group (see "Agents on Telegram")
    agents_use_topics: Literal["auto", "yes", "no"] = "auto"  # auto: a topic per ticket if the group is a forum
    topics_per_minute: int = Field(default=20, gt=0)  # Telegram's createForumTopic limit
    sla_check_seconds: float = Field(default=60.0, gt=0)  # how often SLA breaches are looked for
    sla_warn_minutes: int = Field(default=30, ge=0)  # near-breach warning before a due time
    request_timeout_seconds: float = Field(default=20.0, gt=0)
    polling_timeout_seconds: int = Field(default=10, ge=0, le=50)
    relay_interval_seconds: float = Field(default=5.0, gt=0)  # sweep for agent replies to send
    limits: SendLimitsConfig = SendLimitsConfig()  # sending rates per bot and per chat

    @field_validator("agents_use_topics", mode="before")
    @classmethod
    def _yaml_yes_no(cls, value: object) -> object:
        # YAML 1.1 (PyYAML) reads an unquoted yes/no as a boolean.
        if isinstance(value, bool):
            return "yes" if value else "no"
        return value

    @field_validator("api_base")
    @classmethod
    def _http_base(cls, value: str) -> str:
        value = value.rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        if value.endswith("/bot"):
            raise ValueError("give the server's base URL without /bot (e.g. https://api.telegram.org)")
        return value


class ChannelsConfig(Strict):
    web: WebChannelConfig = WebChannelConfig()
    rest: RestChannelConfig = RestChannelConfig()
    telegram: TelegramChannelConfig = TelegramChannelConfig()


class MetricsConfig(Strict):
    """``GET /metrics`` for Prometheus (``bot/metrics.py``; README "Metrics"). With
    ``DESKBOT_SECRETS__METRICS_TOKEN`` set, a scrape must send ``Authorization: Bearer <token>``."""

    enabled: bool = True
    # A scrape reads the outbox's backlog and the tickets by status at most this often.
    cache_seconds: float = Field(default=2.0, ge=0, le=300)


class WebConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    max_body_bytes: int = Field(default=256 * 1024, gt=0)
    # Agents' workspace: session cookies get ``Secure`` (HTTPS only) when true — set it
    # whenever the workspace is served over TLS (behind a proxy, say).
    secure_cookies: bool = False
    session_hours: float = Field(default=12.0, gt=0)  # a login lasts at most this long
    session_idle_minutes: float = Field(default=120.0, gt=0)  # ... and ends after this much inactivity
    login_max_failures: int = Field(default=5, ge=1)  # per account, then locked for login_lockout_minutes
    login_ip_max_failures: int = Field(default=30, ge=1)  # per client address, same lockout
    login_lockout_minutes: float = Field(default=15.0, gt=0)
    login_failure_delay_seconds: float = Field(default=1.0, ge=0)  # slows down password guessing
    metrics: MetricsConfig = MetricsConfig()


class BusinessHours(Strict):
    timezone: str = "Europe/London"
    # weekday (mon..sun) -> ["09:00", "17:00"]; missing days are closed
    days: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], tuple[time, time]] = {
        "mon": (time(9), time(17)),
        "tue": (time(9), time(17)),
        "wed": (time(9), time(17)),
        "thu": (time(9), time(17)),
        "fri": (time(9), time(17)),
    }
    holidays: list[date] = []

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _open_before_close(self) -> BusinessHours:
        for day, (start, end) in self.days.items():
            if start >= end:
                raise ValueError(f"days.{day}: opening {start} is not before closing {end}")
        return self


class SlaTarget(Strict):
    first_response_minutes: int = Field(gt=0)
    resolution_minutes: int = Field(gt=0)


class SlaConfig(Strict):
    """Business-hours minutes per priority."""

    low: SlaTarget = SlaTarget(first_response_minutes=8 * 60, resolution_minutes=5 * 8 * 60)
    normal: SlaTarget = SlaTarget(first_response_minutes=4 * 60, resolution_minutes=3 * 8 * 60)
    high: SlaTarget = SlaTarget(first_response_minutes=60, resolution_minutes=8 * 60)
    urgent: SlaTarget = SlaTarget(first_response_minutes=30, resolution_minutes=4 * 60)


class ShopConfig(Strict):
    name: str = "Demo Shop"
    catalog: Path = Path("examples/shop/catalog.yml")
    faq: Path = Path("examples/shop/faq.yml")
    orders_csv: Path | None = Path("examples/shop/orders.csv")
    # A regular expression for the shop's order ids, when the shape inferred from the imported
    # orders is not enough (e.g. before the first import); matched case-insensitively.
    order_id_pattern: str | None = None
    return_window_days: int = Field(default=30, ge=0)
    high_value_order: float = Field(default=200.0, ge=0)


class DialogueConfig(Strict):
    fallback_after: int = Field(default=2, ge=1)
    complaint_repeat_days: int = Field(default=30, ge=1)
    # Hours after an agent resolved a ticket during which the customer writing about it
    # again reopens it (0: never; a new ticket is opened instead).
    reopen_hours: float = Field(default=48.0, ge=0)


class CustomerLimitConfig(Strict):
    """The per-customer rate (``storage/customer_limits.py``): past ``messages`` in any
    ``seconds`` the customer gets one polite reply, then the bot answers nothing more (every
    message still stored) until they pause for a window. Kept in Redis with ``state.backend:
    redis``, so every worker applies it alike. Conversations with an agent are not limited."""

    enabled: bool = True
    messages: int = Field(default=20, ge=1, le=10_000)
    seconds: float = Field(default=60.0, gt=0, le=86_400)


class LimitsConfig(Strict):
    customer: CustomerLimitConfig = CustomerLimitConfig()


class LoggingConfig(Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # auto: readable text lines when stderr is a terminal, JSON lines otherwise (bot/logs.py).
    format: Literal["auto", "json", "text"] = "auto"


class RetentionConfig(Strict):
    """How long conversations are kept per channel before they are anonymised.

    ``days`` maps a channel (``webchat``, ``rest``, ``telegram``, ``console``) to a number
    of days; a channel not listed keeps everything. ``serve`` applies it every
    ``interval_minutes`` (0: only ``deskbot retention run``). ``vacuum_after_erase``: run
    PostgreSQL's ``VACUUM`` on the touched tables after an erasure, so the erased text does
    not survive in dead row versions (``storage/data_rights.py``: ``vacuum_erased``).
    """

    days: dict[str, Annotated[int, Field(ge=1, le=36500)]] = {}
    interval_minutes: float = Field(default=60.0, ge=0)
    vacuum_after_erase: bool = True

    @field_validator("days")
    @classmethod
    def _channel_names(cls, value: dict[str, int]) -> dict[str, int]:
        for channel in value:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", channel):
                raise ValueError(f"{channel!r} is not a channel name (lowercase letters, digits, _)")
        return value


class LeaderConfig(Strict):
    """The lease that elects the one process running the singletons (``bot/leader.py``).

    On Redis state (``state.backend: redis``) the lease is a Redis key renewed every third of
    ``ttl_seconds``; a leader that dies is replaced within about ``ttl_seconds``. With memory
    state the only process is the leader and this is not used.
    """

    ttl_seconds: float = Field(default=10.0, ge=1.0, le=300.0)


class IntakeConfig(Strict):
    """Where inbound deliveries wait for a turn (``bot/intake.py``, ``bot/worker.py``).

    ``inline`` (the embedded default): the process that receives a message runs its turn.
    ``redis``: the web front appends each delivery to a Redis stream, hashed by conversation
    onto one of ``partitions`` streams, and ``deskbot worker`` processes handle them, one owner
    per partition (a lease of ``lease_ttl_seconds``): in order per conversation, in parallel
    across them. The REST channel and the web chat still answer with the turn's replies,
    waiting at most ``answer_timeout_seconds`` (then 503 "retry shortly").
    """

    queue: Literal["inline", "redis"] = "inline"
    redis_url: str = "redis://127.0.0.1:6379/0"
    partitions: int = Field(default=16, ge=1, le=1024)
    lease_ttl_seconds: float = Field(default=10.0, ge=0.5, le=300.0)
    answer_timeout_seconds: float = Field(default=30.0, gt=0, le=600.0)
    batch: int = Field(default=16, ge=1, le=1000)  # entries a partition's owner reads at once


class Settings(Strict):
    languages: list[Literal["en", "zh"]] = ["en", "zh"]
    default_language: Literal["en", "zh"] = "en"
    storage: StorageConfig = StorageConfig()
    state: StateConfig = StateConfig()
    events: EventsConfig = EventsConfig()
    classifier: ClassifierConfig = ClassifierConfig()
    channels: ChannelsConfig = ChannelsConfig()
    web: WebConfig = WebConfig()
    business_hours: BusinessHours = BusinessHours()
    sla: SlaConfig = SlaConfig()
    shop: ShopConfig = ShopConfig()
    dialogue: DialogueConfig = DialogueConfig()
    limits: LimitsConfig = LimitsConfig()
    logging: LoggingConfig = LoggingConfig()
    retention: RetentionConfig = RetentionConfig()
    leader: LeaderConfig = LeaderConfig()
    intake: IntakeConfig = IntakeConfig()
    secrets: dict[str, SecretStr] = {}

    @model_validator(mode="after")
    def _default_language_enabled(self) -> Settings:
        if self.default_language not in self.languages:
            raise ValueError(f"default_language {self.default_language!r} is not in languages")
        telegram = self.channels.telegram
        if telegram.enabled and "telegram_token" not in self.secrets:
            raise ValueError("channels.telegram.enabled needs the bot token in DESKBOT_SECRETS__TELEGRAM_TOKEN")
        # Secrets only serving needs (the webhook's) are checked by check_serving(): a command
        # that only reads or writes the store (tickets show/reply) runs without them.
        if self.channels.rest.sender_proof == "hmac" and "rest_identity_secret" not in self.secrets:
            raise ValueError(
                "channels.rest.sender_proof hmac needs the signing key in DESKBOT_SECRETS__REST_IDENTITY_SECRET"
            )
        token = self.secrets.get("telegram_token")
        if telegram.enabled and token is not None:
            problem = token_problem(token.get_secret_value())
            if problem is not None:
                raise ValueError(problem)
        hook_secret = self.secrets.get("telegram_webhook_secret")
        if hook_secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", hook_secret.get_secret_value()):
            raise ValueError("secrets.telegram_webhook_secret: Telegram allows 1-256 characters of A-Z a-z 0-9 _ -")
        return self

    def check_serving(self) -> None:
        """The secrets ``deskbot serve`` needs beyond what every command needs; ConfigError names
        the missing one. Not part of validation: an operator running ``deskbot tickets reply``
        in a shell without the webhook secret is not serving the webhook."""
        telegram = self.channels.telegram
        if telegram.enabled and telegram.mode == "webhook" and "telegram_webhook_secret" not in self.secrets:
            raise ConfigError(
                "channels.telegram.mode webhook needs DESKBOT_SECRETS__TELEGRAM_WEBHOOK_SECRET to serve "
                "(Telegram sends it in X-Telegram-Bot-Api-Secret-Token)"
            )

    def resolve_paths(self, root: Path) -> Settings:
        """Make relative paths relative to the config file's folder, not the cwd."""

        def fix(p: Path) -> Path:
            return p if p.is_absolute() else (root / p)

        url = self.storage.url
        prefix = "sqlite+aiosqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            url = prefix + str(fix(Path(url[len(prefix):])))
        return self.model_copy(
            update={
                "storage": self.storage.model_copy(update={"url": url}),
                "classifier": self.classifier.model_copy(
                    update={"data_dir": fix(self.classifier.data_dir), "model_path": fix(self.classifier.model_path)}
                ),
                "shop": self.shop.model_copy(
                    update={
                        "catalog": fix(self.shop.catalog),
                        "faq": fix(self.shop.faq),
                        "orders_csv": fix(self.shop.orders_csv) if self.shop.orders_csv else None,
                    }
                ),
            }
        )


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def _env_overrides(environ: dict[str, str]) -> list[tuple[list[str], Any]]:
    out = []
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name.startswith(TEST_ENV_PREFIX):
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX):].split("__") if p]
        if not path:
            continue
        # YAML parsing turns "8080" into 8080 and "[en]" into a list, like the file would.
        try:
            value = safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            value = raw
        if path[-1] in SECRET_KEYS or path[0] == "secrets":
            value = raw  # secrets stay exact strings
        out.append((path, value))
    return out


def _find_secret_in_file(tree: Any, path: str = "") -> str | None:
    if isinstance(tree, dict):
        for key, value in tree.items():
            here = f"{path}.{key}" if path else str(key)
            if str(key) in SECRET_KEYS and value not in (None, ""):
                return here
            if here == "secrets" and value:
                return here
            found = _find_secret_in_file(value, here)
            if found:
                return found
    return None


def _describe(error: ErrorDetails) -> str:
    key = ".".join(str(p) for p in error["loc"]) or "(root)"
    value = error.get("input")
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    shown = repr(value) if not isinstance(value, dict) else "{…}"
    if len(shown) > 80:
        shown = shown[:77] + "…"
    return f"{key} = {shown}: {error['msg']}"


def load_settings(path: Path | str | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read the YAML file, apply environment overrides, validate; ConfigError names the key."""
    environ = dict(os.environ if environ is None else environ)
    config_path = Path(path or environ.get("DESKBOT_CONFIG", "config.yaml"))
    tree: dict[str, Any] = {}
    if config_path.exists():
        try:
            loaded = safe_load(config_path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{config_path}: not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{config_path}: the top level must be a mapping of keys")
        tree = loaded or {}
    elif path is not None:
        raise ConfigError(f"{config_path}: no such configuration file")
    secret = _find_secret_in_file(tree)
    if secret:
        raise ConfigError(
            f"{secret}: secrets must come from the environment "
            f"(DESKBOT_{secret.upper().replace('.', '__')}), not from {config_path}"
        )
    for key_path, value in _env_overrides({k: v for k, v in environ.items() if k != "DESKBOT_CONFIG"}):
        _set_path(tree, key_path, value)
    try:
        settings = Settings.model_validate(tree)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"invalid configuration ({config_path}): {problems}") from None
    return settings.resolve_paths(config_path.resolve().parent)


def masked(settings: Settings) -> dict[str, Any]:
    """The config as a dict with secrets replaced, safe to log or print."""
    data = settings.model_dump(mode="json")
    data["secrets"] = {k: "********" for k in settings.secrets}
    data["storage"]["url"] = re.sub(r"://([^:/@]+):[^@]+@", r"://\1:********@", data["storage"]["url"])
    return data
