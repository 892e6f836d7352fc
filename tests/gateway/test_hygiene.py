"""Guards that hold whatever the tests above do: no secret in a cassette, a cheap import, the
key and mode checks before any request."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from billing_cli.config import Settings
from billing_cli.errors import ConfigError
from billing_cli.gateway import make_gateway

from .conftest import CASSETTE_DIR, scrub_bytes

# Word boundaries keep "network_status" from matching "rk_".
FORBIDDEN = re.compile(
    r"\b(sk_test_|sk_live_|rk_test_|rk_live_|rk_|whsec_)|idempotency-key|billing:[a-z]",
    re.IGNORECASE,
)


def cassettes() -> list[Path]:
    return sorted(CASSETTE_DIR.glob("*.yaml"))


def test_there_are_cassettes() -> None:
    assert len(cassettes()) >= 5


@pytest.mark.parametrize("path", cassettes(), ids=lambda p: p.name)
def test_cassette_holds_no_key_secret_or_idempotency_key(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    found = sorted({m.group(0) for m in FORBIDDEN.finditer(text)})
    assert not found, f"{path.name} contains {found}"


def test_cassettes_point_only_at_the_loopback() -> None:
    for path in cassettes():
        hosts = set(re.findall(r"uri: https?://([^/:]+)", path.read_text(encoding="utf-8")))
        assert hosts <= {"127.0.0.1"}, f"{path.name} was recorded against {hosts}"


def test_importing_the_gateway_does_not_import_stripe() -> None:
    code = "import sys, billing_cli.gateway; sys.exit('stripe' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_make_gateway_needs_a_key() -> None:
    with pytest.raises(ConfigError, match="STRIPE_SECRET_KEY is not set"):
        make_gateway(Settings())


def test_make_gateway_refuses_a_live_key_outside_live_mode() -> None:
    with pytest.raises(ConfigError, match="refusing a live Stripe key"):
        make_gateway(Settings(stripe_secret_key="sk_live_0123456789abcdef"))


@pytest.mark.parametrize(
    "text",
    [
        "Bearer sk_test_abc",
        "sk_live_x",
        "rk_test_y",
        "whsec_z",
        "Idempotency-Key: u",
        "billing:op:1",
    ],
)
def test_the_scanner_catches_what_it_looks_for(text: str) -> None:
    assert FORBIDDEN.search(text)


def test_the_scanner_ignores_words_that_merely_contain_rk() -> None:
    assert not FORBIDDEN.search('"network_status": "approved_by_network", "work_phone"')


def test_the_recording_scrubber_removes_keys() -> None:
    raw = (
        b'{"secret": "whsec_abc123", "key": "sk_test_51Abc", "k": "billing:a.b:' + b"f" * 32 + b'"}'
    )
    cleaned = scrub_bytes(raw)
    assert not FORBIDDEN.search(cleaned.decode())
