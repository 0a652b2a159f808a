"""The plugin API: hook specs, loading, errors naming the plugin, `arrears plugins`."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
import types
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from conftest import JANE, START, placement, usd

import cli.plugins
from bootstrap import allocation_order_from, build_service
from cli import main
from ledger.clock import MovableClock
from ledger.domain.allocation import DEFAULT_ORDER
from plugins import (
    Channel,
    Delivery,
    Disclosure,
    MessageTemplate,
    OutboundMessage,
    Route,
    Verdict,
    hookimpl,
    hookspecs,
)
from plugins.errors import PluginError, PluginLoadError
from plugins.manager import ArrearsPluginManager, build_plugin_manager, call_hook

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "plugins.md").read_text()
HOOKS = sorted(n for n in vars(hookspecs) if n.startswith("arrears_"))
AT = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def manager(*plugins: tuple[str, object], builtins: bool = True) -> ArrearsPluginManager:
    """A manager with the built-ins (optionally) and the given plugins, no entry points."""
    return build_plugin_manager(builtins=builtins, entry_points=False, disabled=(), extra=plugins)


def spec_args(name: str) -> list[str]:
    return list(inspect.signature(getattr(hookspecs, name)).parameters)


def doc_sections() -> dict[str, tuple[list[str], str]]:
    """Hook name -> (arguments in its heading, text of its section) from docs/plugins.md."""
    sections: dict[str, tuple[list[str], str]] = {}
    parts = re.split(r"^### `(arrears_\w+)\(([^)]*)\)`\s*$", DOC, flags=re.M)
    for i in range(1, len(parts), 3):
        args = [a.strip() for a in parts[i + 1].split(",") if a.strip()]
        sections[parts[i]] = (args, parts[i + 2].split("\n### ")[0])
    return sections


# ------------------------------------------------------------------ meta-tests


def test_every_hook_is_documented_in_docs_plugins_md() -> None:
    """Each hook has a section with its exact arguments, each described, first-result and since."""
    sections = doc_sections()
    assert sorted(sections) == HOOKS
    for name in HOOKS:
        args, text = sections[name]
        assert args == spec_args(name), name
        assert f"def {name}(" in text, name
        for arg in args:
            assert f"`{arg}` —" in text, (name, arg)
        first = getattr(hookspecs, name).arrears_spec["firstresult"]
        assert ("**First result wins:** yes" if first else "**First result wins:** no") in text
        assert "**Since:** 0.1" in text and "**When called:**" in text and "**Returns:**" in text


def test_every_hook_has_a_test_of_its_own() -> None:
    """Every hook name appears in the name of a test function in this module."""
    tests = [n for n, f in globals().items() if n.startswith("test_") and callable(f)]
    missing = [h for h in HOOKS if not any(f"test_hook_{h}" in t for t in tests)]
    assert not missing


def test_hookspecs_are_prefixed_typed_and_documented() -> None:
    """Every spec is arrears_-prefixed, fully typed and carries a versioned docstring."""
    pm = manager(builtins=False)
    assert sorted(n for n in dir(pm.hook) if not n.startswith("_")) == HOOKS
    for name in HOOKS:
        spec = getattr(hookspecs, name)
        sig = inspect.signature(spec)
        assert sig.return_annotation is not inspect.Signature.empty, name
        assert all(p.annotation is not inspect.Parameter.empty for p in sig.parameters.values())
        doc = spec.__doc__ or ""
        assert ".. versionadded:: 0.1" in doc and ":return:" in doc, name
        for arg in sig.parameters:
            assert f":param {arg}:" in doc, (name, arg)
        assert ("First result wins" in doc) == spec.arrears_spec["firstresult"], name


def test_plugin_authors_need_one_import_and_the_core_never_imports_plugins() -> None:
    """`from plugins import hookimpl` is the arrears marker; ledger/ has no plugins import."""
    assert hookimpl.project_name == "arrears"
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "ledger").rglob("*.py")
        if re.search(r"^\s*(from|import) plugins\b", p.read_text(), flags=re.M)
    ]
    assert offenders == []


# --------------------------------------------------------------- one per hook


def test_hook_arrears_contact_rules_collects_every_plugins_verdicts() -> None:
    """Verdicts from two rule plugins come back together, with rule id, version, citation."""

    class Quiet:
        @hookimpl
        def arrears_contact_rules(self, account, debtor, channel, purpose, at):  # type: ignore[no-untyped-def]
            if at.hour >= 21:
                return [Verdict("block", "quiet", "2", "after 21:00", "12 CFR 1006.6(b)(1)(i)")]
            return [Verdict("allow", "quiet", "2", "convenient time", "12 CFR 1006.6(b)(1)(i)")]

    class Cease:
        @hookimpl
        def arrears_contact_rules(self, account):  # type: ignore[no-untyped-def]
            if account.get("cease"):
                return [Verdict("block", "cease", "1", "cease requested", "15 USC 1692c(c)")]
            return []

    pm = manager(("quiet", Quiet()), ("cease", Cease()), builtins=False)  # no us_reg_f
    kwargs: dict[str, Any] = {
        "debtor": {},
        "channel": "voice",
        "purpose": "collection",
        "party": "debtor",
        "to": None,
    }
    late = AT.replace(hour=21)
    batches = call_hook(pm, "arrears_contact_rules", account={"cease": True}, at=late, **kwargs)
    verdicts = sorted((v for b in batches for v in b), key=lambda v: v.rule_id)
    assert [(v.rule_id, v.outcome) for v in verdicts] == [("cease", "block"), ("quiet", "block")]
    assert verdicts[1].rule_version == "2" and verdicts[1].citation.startswith("12 CFR")
    with pytest.raises(ValueError, match="outcome"):
        Verdict("maybe", "r", "1", "", "")  # type: ignore[arg-type]


def test_hook_arrears_channels_provide_named_channels_that_send_and_report() -> None:
    """A plugin's channel satisfies the Channel protocol, sends and reports delivery."""

    class Outbox:
        name = "outbox"

        def __init__(self) -> None:
            self.sent: dict[str, OutboundMessage] = {}

        def send(self, message: OutboundMessage) -> Delivery:
            self.sent[message.message_id] = message
            return Delivery(message.message_id, "sent", AT)

        def delivery(self, message_id: str) -> Delivery:
            return Delivery(message_id, "delivered" if message_id in self.sent else "failed", AT)

    class Plugin:
        @hookimpl
        def arrears_channels(self) -> list[Channel]:
            return [Outbox()]

    pm = manager(("outbox", Plugin()))
    (channel,) = [c for batch in call_hook(pm, "arrears_channels") for c in batch]
    assert isinstance(channel, Channel) and channel.name == "outbox"
    assert channel.send(OutboundMessage("m1", "outbox", "jane", "hello")).status == "sent"
    assert channel.delivery("m1").status == "delivered"
    assert channel.delivery("m2").status == "failed"


def test_hook_arrears_message_templates_per_channel_and_locale() -> None:
    """Templates are asked for by channel and locale; plugins answer only for theirs."""

    class Templates:
        @hookimpl
        def arrears_message_templates(self, channel: str, locale: str) -> list[MessageTemplate]:
            if (channel, locale) == ("sms", "es-US"):
                return [MessageTemplate("reminder", "sms", "es-US", "Hola {name}")]
            return []

    pm = manager(("templates", Templates()))
    found = call_hook(pm, "arrears_message_templates", channel="sms", locale="es-US")
    assert [t.body for b in found for t in b] == ["Hola {name}"]
    assert call_hook(pm, "arrears_message_templates", channel="email", locale="es-US") == [[]]


def test_hook_arrears_required_disclosures_name_rule_and_citation() -> None:
    """A rule pack requires an opt-out notice in every text and email."""

    class OptOut:
        @hookimpl
        def arrears_required_disclosures(self, channel: str) -> list[Disclosure]:
            if channel in {"sms", "email"}:
                return [Disclosure("opt_out", "Reply STOP to opt out.", "12 CFR 1006.6(e)")]
            return []

    pm = manager(("opt-out", OptOut()), builtins=False)
    kwargs: dict[str, Any] = {"account": {}, "locale": "en-US", "purpose": "collection"}
    sms = call_hook(pm, "arrears_required_disclosures", channel="sms", **kwargs)
    assert [d.rule_id for b in sms for d in b] == ["opt_out"]
    assert call_hook(pm, "arrears_required_disclosures", channel="letter", **kwargs) == [[]]


def test_hook_arrears_allocation_order_decides_the_waterfall_first_result_wins(
    tmp_path: Path,
) -> None:
    """A plugin's order wins over the built-in for its creditor; others get the default."""

    class PrincipalFirst:
        @hookimpl
        def arrears_allocation_order(self, creditor: str) -> tuple[str, ...] | None:
            return ("principal", "interest", "fees") if creditor == "acme-bank" else None

    pm = manager(("principal-first", PrincipalFirst()))
    service = build_service(f"sqlite:///{tmp_path / 'a.db'}", clock=MovableClock(START), plugins=pm)
    try:
        aid = service.place_account(placement(), debtor=JANE).id
        other = service.place_account(placement("ACC-2", creditor="other"), debtor=JANE).id
        service.post_payment(aid, usd("60.00"), method="card")
        service.post_payment(other, usd("60.00"), method="card")
        assert dict(service.get_account(aid).balance)["principal"] == 94000
        assert dict(service.get_account(other).balance)["fees"] == 0
    finally:
        service.ledger.close()


def test_builtin_allocation_plugin_gives_the_default_order_and_can_be_absent() -> None:
    """The built-in answers fees, interest, principal; with no answer at all the default stands."""
    assert tuple(allocation_order_from(manager())("any")) == DEFAULT_ORDER
    assert tuple(allocation_order_from(manager(builtins=False))("any")) == DEFAULT_ORDER


def test_invalid_allocation_order_is_a_plugin_error() -> None:
    """An order that leaves a component out fails with an error naming the implementers."""

    class Broken:
        @hookimpl
        def arrears_allocation_order(self) -> list[str]:
            return ["fees"]

    with pytest.raises(PluginError, match="broken"):
        allocation_order_from(manager(("broken", Broken())))("acme-bank")


def test_hook_arrears_event_committed_observes_event_and_position() -> None:
    """An observer receives each committed event with its position."""
    seen: list[tuple[object, int]] = []

    class Observer:
        @hookimpl
        def arrears_event_committed(self, event: object, position: int) -> None:
            seen.append((event, position))

    pm = manager(("observer", Observer()))
    call_hook(pm, "arrears_event_committed", event="PaymentPosted", position=7)
    assert seen == [("PaymentPosted", 7)]


def test_hook_arrears_cli_commands_are_added_to_main(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin's command runs as `arrears hello`; one reusing a core name is ignored."""

    @click.command("hello")
    def hello() -> None:
        click.echo("hello from a plugin")

    @click.command("verify")
    def fake_verify() -> None:
        click.echo("hijacked")

    class Commands:
        @hookimpl
        def arrears_cli_commands(self) -> list[click.Command]:
            return [hello, fake_verify]

    monkeypatch.setattr(cli.plugins, "build_plugin_manager", lambda: manager(("cmds", Commands())))
    runner = CliRunner()
    result = runner.invoke(main, ["hello"])
    assert result.exit_code == 0 and result.output == "hello from a plugin\n"
    assert "hello" in runner.invoke(main, ["--help"]).output
    assert main.get_command(click.Context(main), "verify") is not fake_verify


def test_hook_arrears_http_routes_describe_routes() -> None:
    """Routes come back as descriptions the HTTP server can mount."""

    def ping(request: object) -> str:
        return "pong"

    class Routes:
        @hookimpl
        def arrears_http_routes(self) -> list[Route]:
            return [Route("GET", "/plugins/ping", ping, "ping")]

    pm = manager(("routes", Routes()))
    (route,) = [r for b in call_hook(pm, "arrears_http_routes") for r in b]
    assert (route.method, route.path, route.handler(None)) == ("GET", "/plugins/ping", "pong")


def test_implementation_may_accept_a_subset_of_a_hooks_arguments() -> None:
    """Hooks grow by adding arguments: an implementation taking fewer still works."""

    class Minimal:
        @hookimpl
        def arrears_contact_rules(self, channel: str) -> list[Verdict]:
            return [Verdict("warn", "minimal", "1", f"saw {channel}", "none")]

    pm = manager(("minimal", Minimal()), builtins=False)
    batches = call_hook(
        pm,
        "arrears_contact_rules",
        account={},
        debtor={},
        channel="sms",
        purpose="x",
        at=AT,
        party="debtor",
        to=None,
    )
    assert [v.reason for b in batches for v in b] == ["saw sms"]


# ------------------------------------------------------------------ the docs


def test_docs_example_plugin_runs() -> None:
    """The runnable example in docs/plugins.md runs and its assertions hold."""
    match = re.search(r"<!-- example: runnable -->\n```python\n(.*?)```", DOC, flags=re.S)
    assert match
    result = subprocess.run(
        [sys.executable, "-"], input=match.group(1), text=True, capture_output=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert "example plugin works" in result.stdout


# ------------------------------------------------------------------- loading


class FakeDistribution:
    """Just enough of importlib.metadata.Distribution for entry-point loading."""

    def __init__(self, name: str, version: str, *entry_points: EntryPoint) -> None:
        self.metadata = {"name": name}
        self.version = version
        self.entry_points = list(entry_points)


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[FakeDistribution]]:
    """Distributions 'installed' for this test only; a module `fake_arrears_plugin` exists."""
    dists: list[FakeDistribution] = []
    module = types.ModuleType("fake_arrears_plugin")

    @hookimpl
    def arrears_allocation_order(creditor: str) -> tuple[str, ...]:
        return ("interest", "principal", "fees")

    module.arrears_allocation_order = arrears_allocation_order  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_arrears_plugin", module)
    monkeypatch.setattr("importlib.metadata.distributions", lambda: iter(dists))
    monkeypatch.delenv("ARREARS_DISABLE_PLUGINS", raising=False)
    yield dists


def entry_point(name: str, value: str, group: str = "arrears") -> EntryPoint:
    return EntryPoint(name=name, value=value, group=group)


def test_entry_point_plugins_load_with_their_distribution_version(
    installed: list[FakeDistribution],
) -> None:
    """A plugin in the `arrears` entry-point group is registered under its name and version."""
    installed.append(
        FakeDistribution(
            "arrears-interest-first",
            "2.3.1",
            entry_point("interest-first", "fake_arrears_plugin"),
            entry_point("ignored", "nowhere", group="console_scripts"),
        )
    )
    pm = build_plugin_manager()
    infos = {i.name: i for i in pm.plugin_infos()}
    assert sorted(infos) == [
        "builtin.allocation",
        "builtin.cn_collection",
        "builtin.uk_conc",
        "builtin.us_reg_f",
        "interest-first",
    ]
    assert infos["interest-first"].version == "2.3.1"
    assert infos["interest-first"].hooks == ("arrears_allocation_order",)
    assert allocation_order_from(pm)("acme-bank") == ("interest", "principal", "fees")


def test_arrears_disable_plugins_blocks_plugins_by_name(
    installed: list[FakeDistribution], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Named plugins, external or built-in, are not loaded; the default order still stands."""
    installed.append(
        FakeDistribution("d", "1.0", entry_point("interest-first", "fake_arrears_plugin"))
    )
    monkeypatch.setenv(
        "ARREARS_DISABLE_PLUGINS",
        " interest-first , builtin.allocation,builtin.us_reg_f,builtin.cn_collection,"
        "builtin.uk_conc",
    )
    pm = build_plugin_manager()
    assert pm.plugin_infos() == []
    assert pm.is_blocked("interest-first") and pm.is_blocked("builtin.allocation")
    assert tuple(allocation_order_from(pm)("acme-bank")) == DEFAULT_ORDER
    assert pm.unknown_disabled == []


def test_disabling_a_plugin_nobody_has_is_reported(
    installed: list[FakeDistribution], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A typo in ARREARS_DISABLE_PLUGINS leaves the plugin running: say so."""
    monkeypatch.setenv("ARREARS_DISABLE_PLUGINS", "builtin.us_regf")
    pm = build_plugin_manager()
    assert pm.unknown_disabled == ["builtin.us_regf"]
    assert "builtin.us_reg_f" in {i.name for i in pm.plugin_infos()}
    listed = CliRunner().invoke(main, ["plugins"])
    assert "warning [unknown_plugin]" in listed.output and "'builtin.us_regf'" in listed.output


def test_plugin_that_fails_to_import_gives_a_clear_error_naming_it(
    installed: list[FakeDistribution],
) -> None:
    """An entry point whose module is missing raises PluginLoadError naming plugin and cause."""
    installed.append(
        FakeDistribution("arrears-holidays", "0.1", entry_point("holidays", "no_such_mod"))
    )
    with pytest.raises(PluginLoadError) as raised:
        build_plugin_manager()
    assert raised.value.plugin == "holidays"
    assert "'holidays'" in raised.value.message and "arrears-holidays" in raised.value.message
    assert "ModuleNotFoundError" in raised.value.message


def test_import_failure_is_one_line_in_the_cli(installed: list[FakeDistribution]) -> None:
    """`arrears plugins` with a broken plugin prints one error line and exits 2."""
    installed.append(
        FakeDistribution("arrears-holidays", "0.1", entry_point("holidays", "no_such_mod"))
    )
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error [plugin_load_error]: plugin 'holidays'")


def test_plugin_with_unknown_hook_is_refused_naming_it() -> None:
    """A misspelt arrears_ hook is a load error naming the plugin, not a silent no-op."""

    class Typo:
        @hookimpl
        def arrears_alocation_order(self) -> None:
            return None

    with pytest.raises(PluginLoadError, match="'typo'"):
        manager(("typo", Typo()))


def test_hook_that_raises_gives_an_error_naming_the_plugin(tmp_path: Path) -> None:
    """A raising hook fails the command with a PluginError naming it; nothing is recorded."""

    class Crashes:
        @hookimpl
        def arrears_allocation_order(self, creditor: str) -> None:
            raise RuntimeError("rates table missing")

    pm = manager(("crashes", Crashes()))
    with pytest.raises(PluginError, match=r"plugin 'crashes' failed in arrears_allocation_order"):
        call_hook(pm, "arrears_allocation_order", creditor="x")
    service = build_service(f"sqlite:///{tmp_path / 'a.db'}", clock=MovableClock(START), plugins=pm)
    try:
        aid = service.place_account(placement(), debtor=JANE).id
        before = service.get_account(aid).version
        with pytest.raises(PluginError) as raised:
            service.post_payment(aid, usd("60.00"), method="card")
        assert raised.value.plugin == "crashes" and raised.value.code == "plugin_error"
        assert service.get_account(aid).version == before
    finally:
        service.ledger.close()


# ------------------------------------------------------------ arrears plugins


def test_arrears_plugins_lists_plugins_versions_and_hooks(
    installed: list[FakeDistribution],
) -> None:
    """The table and the JSON name each plugin, its version, source and hooks."""
    installed.append(
        FakeDistribution(
            "arrears-if", "2.3.1", entry_point("interest-first", "fake_arrears_plugin")
        )
    )
    runner = CliRunner()
    text = runner.invoke(main, ["plugins"])
    assert text.exit_code == 0, text.output
    rows = text.output.splitlines()
    assert rows[0].split() == ["plugin", "version", "source", "hooks"]
    assert rows[1].split()[:3] == ["builtin.allocation", "0.1.0", "built-in"]
    assert (
        "interest-first" in rows[5] and "2.3.1" in rows[5] and "arrears_allocation_order" in rows[5]
    )
    listed = json.loads(runner.invoke(main, ["plugins", "--json"]).output)
    assert listed[4] == {
        "name": "interest-first",
        "version": "2.3.1",
        "source": "entry point (arrears-if)",
        "hooks": ["arrears_allocation_order"],
    }
