"""The plugin under test, for the Arrears test kit's fixtures (``arrears_plugin`` & co.)."""

from __future__ import annotations

import pytest

import arrears_holidays.plugin


@pytest.fixture
def arrears_plugin() -> object:
    """The plugin exactly as Arrears loads it from the entry point."""
    return arrears_holidays.plugin


@pytest.fixture
def arrears_plugin_name() -> str:
    return "holidays"
