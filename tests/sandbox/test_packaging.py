"""A production install leaves the sandbox's server dependencies out; the extra brings them.

``pip install billing-cli`` installs ``[project].dependencies`` only: localstripe and aiohttp
must sit in the ``sandbox`` extra, which ``dev`` (and so scripts/setup.sh) pulls in.
"""

from __future__ import annotations

import importlib.metadata
import json
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import stripe_sandbox
from stripe_sandbox import process

ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = {"localstripe", "aiohttp"}


def _names(requirements: list[str]) -> set[str]:
    return {Requirement(r).name.lower() for r in requirements}


@pytest.fixture(scope="module")
def project() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def test_the_base_install_has_no_sandbox_dependency(project: dict[str, object]) -> None:
    meta = project["project"]
    assert isinstance(meta, dict)
    assert not SERVER_ONLY & _names(meta["dependencies"])
    extras = meta["optional-dependencies"]
    assert _names(extras["sandbox"]) == SERVER_ONLY
    assert set(process.SERVER_DEPENDENCIES) == SERVER_ONLY
    dev = [Requirement(r) for r in extras["dev"]]
    assert any(r.name == "billing-cli" and r.extras == {"sandbox"} for r in dev)


def test_the_wheel_carries_the_sandbox_package(project: dict[str, object]) -> None:
    tool = project["tool"]
    assert isinstance(tool, dict)
    assert "stripe_sandbox*" in tool["setuptools"]["packages"]["find"]["include"]
    assert (ROOT / "stripe_sandbox" / "__init__.py").is_file()


def test_installed_metadata_asks_for_the_server_only_under_the_extra() -> None:
    """What pip actually reads, when this checkout is the installed one (scripts/setup.sh)."""
    # Several may be found (an editable build leaves billing_cli.egg-info in the checkout, which
    # is on sys.path under pytest): take the one pip installed from this checkout.
    installed = [
        found
        for found in importlib.metadata.distributions(name="billing-cli")
        if json.loads(found.read_text("direct_url.json") or "{}").get("url") == ROOT.as_uri()
    ]
    if not installed:
        pytest.skip(f"billing-cli is not installed from {ROOT} (scripts/setup.sh installs it)")
    dist = installed[0]
    assert dist.requires, "the installed metadata lists no requirements"
    for line in dist.requires or []:
        requirement = Requirement(line)
        if requirement.name.lower() in SERVER_ONLY:
            assert requirement.marker is not None
            assert not requirement.marker.evaluate({"extra": ""})
            assert requirement.marker.evaluate({"extra": "sandbox"})


def test_a_missing_server_dependency_stops_start_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "SERVER_DEPENDENCIES", ("aiohttp", "no_such_module_for_sure"))
    assert stripe_sandbox.missing_dependencies() == ["no_such_module_for_sure"]
    sandbox = stripe_sandbox.Sandbox(start_timeout=60)
    with pytest.raises(stripe_sandbox.SandboxError, match="needs no_such_module_for_sure"):
        sandbox.start()
    with pytest.raises(stripe_sandbox.SandboxError, match="not running"):
        _ = sandbox.api_base
