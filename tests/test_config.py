"""Settings: precedence, validation, masking, and the live/test key guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from billing_cli.config import (
    Settings,
    check_key_mode,
    display_url,
    load_settings,
    mask,
    mask_url,
    resolve_operator,
)
from billing_cli.errors import ConfigError, UsageError


def test_environment_overrides_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / "custom.env"
    env_file.write_text("BILLING_OPERATOR=from-file\nBILLING_MAX_FAILED_ATTEMPTS=5\n")
    settings = load_settings(env_file=env_file, environ={"BILLING_OPERATOR": "from-env"})
    assert settings.operator == "from-env"
    assert settings.max_failed_attempts == 5


def test_dot_env_in_working_directory_is_read() -> None:
    Path(".env").write_text("BILLING_DATABASE_URL=sqlite:///other.db\n")
    assert load_settings(environ={}).database_url == "sqlite:///other.db"


def test_defaults_without_any_configuration() -> None:
    settings = load_settings(environ={})
    assert settings.database_url == "sqlite:///billing.db"
    assert settings.max_failed_attempts == 3
    assert settings.stripe_live_mode is False


def test_missing_env_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env_file=tmp_path / "nope.env", environ={})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STRIPE_LIVE_MODE", "maybe"),
        ("BILLING_MAX_FAILED_ATTEMPTS", "0"),
        ("BILLING_MAX_FAILED_ATTEMPTS", "three"),
    ],
)
def test_bad_values_are_refused_with_their_name(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(environ={name: value})


@pytest.mark.parametrize("key", ["sk_live_abc123456789", "rk_live_abc123456789"])
def test_live_key_refused_outside_live_mode(key: str) -> None:
    with pytest.raises(ConfigError, match="STRIPE_LIVE_MODE"):
        Settings(stripe_secret_key=key).require_stripe()
    assert Settings(stripe_secret_key=key, stripe_live_mode=True).require_stripe() == key


def test_test_key_refused_in_live_mode() -> None:
    with pytest.raises(ConfigError, match="test key"):
        check_key_mode("sk_test_abc", live_mode=True)


def test_missing_or_malformed_key() -> None:
    with pytest.raises(ConfigError, match="not set"):
        Settings().require_stripe()
    with pytest.raises(ConfigError, match="must start with"):
        Settings(stripe_secret_key="pk_test_abc").require_stripe()


def test_masking_keeps_kind_and_last_four_only() -> None:
    assert mask("sk_test_51HxYzAbCdEfGhIa1b2") == "sk_test_…a1b2"
    assert mask("whsec_0123456789abcdefWXYZ") == "whsec_…WXYZ"
    assert mask("sk_test_short") == "sk_test_…"
    assert mask("") == ""
    assert mask_url("postgresql+psycopg://app:hunter2@db/billing") == (
        "postgresql+psycopg://app:***@db/billing"
    )


def test_public_view_never_contains_a_secret() -> None:
    settings = Settings(
        stripe_secret_key="sk_test_51SECRETSECRETSECRETzz99",
        stripe_webhook_secret="whsec_SECRETSECRETSECRET7777",
        database_url="postgresql+psycopg://app:hunter2@db/billing",
    )
    text = repr(settings.public_view())
    assert "SECRETSECRET" not in text
    assert "hunter2" not in text
    assert "zz99" in text and "7777" in text


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://app@db/billing?password=hunter2",
        "postgresql+psycopg://app@db/billing?sslmode=require&PASSWORD=hunter2",
        "postgresql+psycopg://app:hunter2@db/billing?sslpassword=hunter2",
        "postgresql+psycopg://app:hun?ter2@db/billing",
    ],
)
def test_passwords_in_the_query_are_masked_too(url: str) -> None:
    assert "hunter2" not in mask_url(url)
    assert "hun" not in mask_url(url).split("@")[0].split("://")[1]
    assert "hunter2" not in repr(Settings(database_url=url).public_view())


def test_display_url_makes_a_relative_sqlite_path_absolute() -> None:
    shown = display_url("sqlite:///billing.db")
    assert shown == f"sqlite:///{Path('billing.db').absolute()}"
    assert display_url("sqlite:////srv/x.db") == "sqlite:////srv/x.db"


@pytest.mark.parametrize("port", ["abc", "0", "99999", "５４３２"])
def test_a_non_numeric_port_is_a_config_error(port: str) -> None:
    url = f"postgresql+psycopg://app:hunter2@db:{port}/billing"
    with pytest.raises(ConfigError, match="port") as caught:
        load_settings(environ={"BILLING_DATABASE_URL": url})
    assert "hunter2" not in str(caught.value)


def test_settings_say_which_env_file_was_read(tmp_path: Path) -> None:
    assert load_settings(environ={}).env_file == ""
    Path(".env").write_text("BILLING_OPERATOR=x\n")
    assert load_settings(environ={}).env_file == str(Path(".env").absolute())


def test_an_over_long_or_multi_line_operator_is_refused() -> None:
    with pytest.raises(UsageError, match="the limit is 200"):
        resolve_operator("x" * 201, Settings())
    with pytest.raises(UsageError, match="control characters"):
        resolve_operator(None, Settings(operator="ops\nroot"))
