"""Installed, the plugin is found through the ``arrears`` entry point like any other."""

from __future__ import annotations

import json

import pytest
from cli import main
from click.testing import CliRunner


def test_arrears_plugins_lists_holidays(monkeypatch: pytest.MonkeyPatch) -> None:
    """`arrears plugins --json` shows `holidays` with its version, distribution and hooks."""
    monkeypatch.delenv("ARREARS_DISABLE_PLUGINS", raising=False)
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listed = {p["name"]: p for p in json.loads(result.output)}
    assert listed["holidays"] == {
        "name": "holidays",
        "version": "0.1.0",
        "source": "entry point (arrears-plugin-holidays)",
        "hooks": ["arrears_channels", "arrears_contact_rules"],
    }


def test_arrears_disable_plugins_switches_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """ARREARS_DISABLE_PLUGINS=holidays turns the rule and the channel off without uninstalling."""
    monkeypatch.setenv("ARREARS_DISABLE_PLUGINS", "holidays")
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    assert "holidays" not in {p["name"] for p in json.loads(result.output)}
