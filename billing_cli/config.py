"""One ``Settings`` object, read from the environment and a ``.env`` file when a command runs.

Settings are built on demand (never at import), so ``billing --help`` works with no configuration
and no secrets. Process environment wins over the file, as operators expect when they override one
value for one command. Secrets are only ever shown through :func:`mask`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

from billing_cli.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///billing.db"
SECRET_FIELDS = frozenset(
    {"stripe_secret_key", "stripe_webhook_secret", "database_url", "smtp_url"}
)
_URL_FIELDS = frozenset({"database_url", "smtp_url"})
_KNOWN_PREFIXES = ("sk_test_", "sk_live_", "rk_test_", "rk_live_", "pk_test_", "pk_live_", "whsec_")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    """The effective configuration of one command run."""

    stripe_secret_key: str = ""
    stripe_publishable_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_live_mode: bool = False
    stripe_api_base: str = ""
    stripe_max_network_retries: int = 2
    stripe_timeout: float = 20.0
    stripe_time_budget: float = 45.0
    database_url: str = DEFAULT_DATABASE_URL
    operator: str = ""
    max_failed_attempts: int = 3
    log_file: str = ""
    webhook_url: str = ""
    database_role: str = ""
    env_file: str = ""  # the .env file these settings were read from (absolute), if any
    # `billing notifications send`
    smtp_url: str = ""
    mail_from: str = ""
    notify_max_attempts: int = 8
    mail_templates: str = ""  # BILLING_MAIL_TEMPLATES: a directory overriding the templates
    # `billing check`: a rule fires when its figure is above its threshold
    alert_signature_failures: int = 10
    alert_payment_failure_rate: float = 0.2
    alert_payment_min_attempts: int = 5
    alert_stripe_errors: int = 5
    alert_failed_events: int = 0
    alert_silence_hours: float = 24.0
    alert_open_intents: int = 0
    paused_access: str = "keep"  # BILLING_PAUSED_ACCESS: keep|suspend while collection is paused

    def require_stripe(self) -> str:
        """Return the secret key after checking it exists and matches the configured mode.

        Called only by commands that talk to Stripe, so the rest of the tool works without a key.
        """
        key = self.stripe_secret_key
        if not key:
            raise ConfigError(
                "STRIPE_SECRET_KEY is not set; put a test key (sk_test_...) in .env "
                "or run `billing sandbox` for a local Stripe"
            )
        check_key_mode(key, live_mode=self.stripe_live_mode)
        return key

    def webhook_secrets(self) -> tuple[str, ...]:
        """The endpoint's signing secrets: one, or several (comma-separated) during a roll."""
        return webhook_secrets(self.stripe_webhook_secret)

    def public_view(self) -> dict[str, object]:
        """Every setting with secrets masked: what ``billing config`` prints."""
        view: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and isinstance(value, str):
                value = mask_url(value) if f.name in _URL_FIELDS else mask(value)
            view[f.name] = value
        return view


def check_key_mode(key: str, *, live_mode: bool) -> None:
    """Refuse a live key outside live mode and a test key in live mode."""
    is_live = key.startswith(("sk_live_", "rk_live_"))
    is_test = key.startswith(("sk_test_", "rk_test_"))
    if not (is_live or is_test):
        raise ConfigError(
            "STRIPE_SECRET_KEY must start with sk_test_, rk_test_, sk_live_ or rk_live_"
        )
    if is_live and not live_mode:
        raise ConfigError(
            "refusing a live Stripe key while STRIPE_LIVE_MODE is not True; "
            "set STRIPE_LIVE_MODE=True to act on real money"
        )
    if is_test and live_mode:
        raise ConfigError(
            "STRIPE_LIVE_MODE=True but STRIPE_SECRET_KEY is a test key; "
            "use a live key or unset STRIPE_LIVE_MODE"
        )


def webhook_secrets(raw: str) -> tuple[str, ...]:
    """Split STRIPE_WEBHOOK_SECRET on commas: while a secret is rolled, Stripe signs each
    delivery with the old and the new one, and the endpoint must accept either until the old
    one expires. Blanks and repeats are dropped."""
    return tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))


def check_webhook_secrets(raw: str) -> tuple[str, ...]:
    """The secrets, each of Stripe's ``whsec_`` form; a ConfigError (never echoing a secret)
    when there is none or one is not a signing secret (an API key pasted by mistake, say)."""
    found = webhook_secrets(raw)
    if not found:
        raise ConfigError(
            "STRIPE_WEBHOOK_SECRET is not set; "
            "put the endpoint's signing secret (whsec_...) in .env"
        )
    for number, secret in enumerate(found, start=1):
        if not _WEBHOOK_SECRET.fullmatch(secret):
            which = f"secret {number} of {len(found)}" if len(found) > 1 else "the secret"
            raise ConfigError(
                f"STRIPE_WEBHOOK_SECRET: {which} is not a signing secret of the form whsec_... "
                "(copy it from the endpoint's page in Stripe's dashboard)"
            )
    return found


_WEBHOOK_SECRET = re.compile(r"whsec_\w+", re.ASCII)


def mask(secret: str) -> str:
    """Show a secret's kind and last four characters only: ``sk_test_…a1b2``."""
    if not secret:
        return ""
    prefix = next((p for p in _KNOWN_PREFIXES if secret.startswith(p)), "")
    tail = secret[-4:] if len(secret) - len(prefix) >= 12 else ""
    return f"{prefix}…{tail}"


def mask_url(url: str) -> str:
    """Hide every password of a database URL (``user:PASSWORD@`` and ``?password=...``), keep
    the rest readable. The URL is split the way SQLAlchemy splits it, so what is hidden here is
    exactly what a driver would use as the password."""
    head, rest = _split_credentials(url)
    path, qmark, query = rest.partition("?")
    if qmark:
        query = _SECRET_QUERY.sub(r"\1***", query)
    return f"{head}{path}{qmark}{query}"


def display_url(url: str) -> str:
    """A database URL for messages: passwords masked, a relative SQLite path made absolute
    (``sqlite:///billing.db`` means a file in the directory the command ran in)."""
    scheme, sep, rest = url.partition(":///")
    if sep and scheme.startswith("sqlite") and rest and not rest.startswith((":memory:", "/")):
        path, qmark, query = rest.partition("?")
        url = f"{scheme}:///{Path(path).absolute()}{qmark}{query}"
    return mask_url(url)


# SQLAlchemy's reading of a URL: scheme://user[:password]@..., the password running to the
# first "@"; the query starts at the first "?" after that.
_CREDENTIALS = re.compile(r"(?P<scheme>[\w+]+://)(?P<user>[^:/]*)(?::(?P<password>[^@]*))?@")
_SECRET_QUERY = re.compile(r"(?i)((?:^|&)[^=&]*(?:password|passwd|pass|pwd)[^=&]*=)[^&]*")


def _split_credentials(url: str) -> tuple[str, str]:
    """``(scheme://user:***@, the rest)``; the first part is empty for a URL without a scheme."""
    found = _CREDENTIALS.match(url)
    if found is None:
        scheme, sep, rest = url.partition("://")
        return (f"{scheme}{sep}", rest) if sep else ("", url)
    password = ":***" if found["password"] is not None else ""
    return f"{found['scheme']}{found['user']}{password}@", url[found.end() :]


SUPPORTED_DATABASE_URLS = "sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DATABASE"
_SCHEME = re.compile(r"([a-z][a-z0-9]*)(\+[a-z0-9_]+)?://", re.IGNORECASE)


def check_database_url(url: str) -> str:
    """Refuse, in one line, what SQLAlchemy would refuse with a bare error: a value that is not
    a URL (never echoed: it may be a password pasted into the wrong variable), a database this
    tool does not support (``postgres://``, ``mysql://``), a malformed IPv6 host, a port that is
    not a number."""
    scheme = _SCHEME.match(url)
    if scheme is None:
        raise ConfigError(
            "BILLING_DATABASE_URL is not a database URL (its value is not shown, as it may be "
            f"a password); use {SUPPORTED_DATABASE_URLS}"
        )
    if scheme.group(1).lower() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"BILLING_DATABASE_URL is a {scheme.group(1)}:// URL; the supported forms are "
            f"{SUPPORTED_DATABASE_URLS}"
        )
    head, rest = _split_credentials(url)
    if head and not url.startswith("sqlite"):
        host = rest.split("/", 1)[0].split("?", 1)[0]
        _check_ipv6_host(host, url)
        port = host.rsplit("]", 1)[-1].rpartition(":")[2] if ":" in host.rsplit("]", 1)[-1] else ""
        if port and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
            raise ConfigError(
                f"BILLING_DATABASE_URL has port {port!r}; a port is a number from 1 to 65535 "
                f"({mask_url(url)})"
            )
    return url


def _check_ipv6_host(host: str, url: str) -> None:
    """An IPv6 host must be a whole address in brackets: ``[::1]``, ``[::1]:5432``."""
    import ipaddress

    if "[" not in host and "]" not in host and host.count(":") < 2:
        return
    address, closed, after = host.removeprefix("[").partition("]")
    try:
        if not (host.startswith("[") and closed and after[:1] in ("", ":")):
            raise ValueError(host)
        ipaddress.IPv6Address(address)
    except ValueError:
        raise ConfigError(
            f"BILLING_DATABASE_URL has a malformed IPv6 host; write it in brackets, as in "
            f"postgresql+psycopg://USER@[::1]:5432/DATABASE ({mask_url(url)})"
        ) from None


def load_settings(
    *, env_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read settings from ``env_file`` (or ``./.env`` when present), overridden by ``environ``."""
    if env_file is not None and not env_file.is_file():
        what = "is a directory, not a file" if env_file.is_dir() else "does not exist"
        raise ConfigError(f"env file {env_file} {what}")
    path = env_file if env_file is not None else Path(".env")
    values: dict[str, str] = {}
    read_from = ""
    if path.is_file():
        values.update(_read_env_file(path))
        read_from = str(path.absolute())
    values.update(os.environ if environ is None else environ)
    return replace(_from_mapping(values), env_file=read_from)


def _read_env_file(path: Path) -> dict[str, str]:
    """The file's settings; one line for a file that is not text (a key file, an archive
    named by mistake), whose bytes would otherwise end in an unexpected UnicodeDecodeError."""
    import io

    from dotenv import dotenv_values

    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read env file {path}: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = "\0"
    if "\0" in text:
        raise ConfigError(f"env file {path} is a binary file, not NAME=value lines of UTF-8 text")
    return {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}


def _from_mapping(values: Mapping[str, str]) -> Settings:
    def text(name: str, default: str = "") -> str:
        return values.get(name, default).strip()

    return Settings(
        stripe_secret_key=text("STRIPE_SECRET_KEY"),
        stripe_publishable_key=text("STRIPE_PUBLISHABLE_KEY"),
        stripe_webhook_secret=text("STRIPE_WEBHOOK_SECRET"),
        stripe_live_mode=_boolean("STRIPE_LIVE_MODE", text("STRIPE_LIVE_MODE")),
        stripe_api_base=text("STRIPE_API_BASE").rstrip("/"),
        stripe_max_network_retries=_integer(
            "STRIPE_MAX_NETWORK_RETRIES", text("STRIPE_MAX_NETWORK_RETRIES", "2"), minimum=0
        ),
        stripe_timeout=_seconds("STRIPE_TIMEOUT", text("STRIPE_TIMEOUT", "20")),
        stripe_time_budget=_seconds("STRIPE_TIME_BUDGET", text("STRIPE_TIME_BUDGET", "45")),
        database_url=check_database_url(text("BILLING_DATABASE_URL") or DEFAULT_DATABASE_URL),
        operator=text("BILLING_OPERATOR"),
        max_failed_attempts=_integer(
            "BILLING_MAX_FAILED_ATTEMPTS", text("BILLING_MAX_FAILED_ATTEMPTS", "3"), minimum=1
        ),
        log_file=text("BILLING_LOG_FILE"),
        webhook_url=text("BILLING_WEBHOOK_URL"),
        database_role=text("BILLING_DATABASE_ROLE"),
        smtp_url=text("BILLING_SMTP_URL"),
        mail_from=text("BILLING_MAIL_FROM"),
        notify_max_attempts=_integer(
            "BILLING_NOTIFY_MAX_ATTEMPTS", text("BILLING_NOTIFY_MAX_ATTEMPTS", "8"), minimum=1
        ),
        mail_templates=text("BILLING_MAIL_TEMPLATES"),
        alert_signature_failures=_integer(
            "BILLING_ALERT_SIGNATURE_FAILURES",
            text("BILLING_ALERT_SIGNATURE_FAILURES", "10"),
            minimum=0,
        ),
        alert_payment_failure_rate=_fraction(
            "BILLING_ALERT_PAYMENT_FAILURE_RATE", text("BILLING_ALERT_PAYMENT_FAILURE_RATE", "0.2")
        ),
        alert_payment_min_attempts=_integer(
            "BILLING_ALERT_PAYMENT_MIN_ATTEMPTS",
            text("BILLING_ALERT_PAYMENT_MIN_ATTEMPTS", "5"),
            minimum=1,
        ),
        alert_stripe_errors=_integer(
            "BILLING_ALERT_STRIPE_ERRORS", text("BILLING_ALERT_STRIPE_ERRORS", "5"), minimum=0
        ),
        alert_failed_events=_integer(
            "BILLING_ALERT_FAILED_EVENTS", text("BILLING_ALERT_FAILED_EVENTS", "0"), minimum=0
        ),
        alert_open_intents=_integer(
            "BILLING_ALERT_OPEN_INTENTS", text("BILLING_ALERT_OPEN_INTENTS", "0"), minimum=0
        ),
        alert_silence_hours=_positive(
            "BILLING_ALERT_SILENCE_HOURS", text("BILLING_ALERT_SILENCE_HOURS", "24")
        ),
        paused_access=_paused_access(text("BILLING_PAUSED_ACCESS", "keep")),
    )


PAUSED_ACCESS = ("keep", "suspend")


def _paused_access(raw: str) -> str:
    """What a tenant whose subscription's collection is paused keeps: its access, or not."""
    value = raw.lower() or "keep"
    if value not in PAUSED_ACCESS:
        raise ConfigError(f"BILLING_PAUSED_ACCESS must be keep or suspend, not {raw!r}")
    return value


def _boolean(name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name} must be True or False, not {raw!r}")


def _integer(name: str, raw: str, *, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def _seconds(name: str, raw: str) -> float:
    """A positive number of seconds, at most ten minutes."""
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not 0 < value <= 600:
        raise ConfigError(f"{name} must be between 0 and 600 seconds, not {raw}")
    return value


def _fraction(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number between 0 and 1, not {raw!r}") from None
    if not 0 <= value <= 1:
        raise ConfigError(f"{name} must be between 0 and 1, not {value}")
    return value


def _positive(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if not value > 0:
        raise ConfigError(f"{name} must be above 0, not {value}")
    return value


def resolve_operator(explicit: str | None, settings: Settings) -> str:
    """Who is acting: ``--operator``, then BILLING_OPERATOR, then the OS user."""
    from billing_cli.text import OPERATOR_MAX, check_length, check_plain

    if explicit:
        return check_plain(
            check_length(explicit, limit=OPERATOR_MAX, option="--operator"), option="--operator"
        )
    if settings.operator:
        return check_plain(
            check_length(settings.operator, limit=OPERATOR_MAX, option="BILLING_OPERATOR"),
            option="BILLING_OPERATOR",
        )
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
