"""TLS settings and their wiring: no server is built without passing TLS on, and settings that
cannot work are refused when read, not when the first client connects."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import ValidationError

from gridtwin.settings import ROOT, Settings, TlsSettings
from gridtwin.tls import aio_channel, grpc_server_credentials, server_ssl_context

CODE = [p for d in ("gridtwin", "services", "actors") for p in (ROOT / d).rglob("*.py")
        if "gridtwin/api/" not in p.as_posix()]
# What gridtwin/app/wiring.py builds: servers that listen, each of which must get the platform's TLS.
SERVERS = {"AssetApi", "AnalyticsApi", "TwinApi", "WeatherApi", "ControlApi", "VppApi", "Gateway"}


def _calls(path: Path, name: str) -> list[ast.Call]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and ((isinstance(node.func, ast.Name) and node.func.id == name)
                 or (isinstance(node.func, ast.Attribute) and node.func.attr == name))]


def test_every_grpc_server_is_given_tls():
    built = [(path, call) for path in CODE for call in _calls(path, "GrpcServer")]
    assert len(built) >= 7   # telemetry, assets, analytics, twins, weather, control, vpp
    missing = [f"{path.relative_to(ROOT)}:{call.lineno}" for path, call in built
               if "tls" not in {k.arg for k in call.keywords}]
    assert not missing, f"GrpcServer built without tls=: {missing}"


def test_every_service_entry_point_passes_the_platform_tls():
    entry_points = ROOT / "gridtwin" / "app" / "wiring.py"
    for name in SERVERS:
        calls = _calls(entry_points, name)
        assert calls, f"{name} is not built in gridtwin/app/wiring.py any more: update SERVERS"
        for call in calls:
            tls = [k.value for k in call.keywords if k.arg == "tls"]
            assert tls and ast.unparse(tls[0]) == "settings.tls", f"{name} at line {call.lineno}"


def test_tls_is_off_by_default_and_read_from_the_environment(monkeypatch):
    assert Settings().tls.enabled is False
    monkeypatch.setenv("GRIDTWIN_TLS__ENABLED", "true")
    monkeypatch.setenv("GRIDTWIN_TLS__CERT_FILE", "/etc/gridtwin/tls.crt")
    monkeypatch.setenv("GRIDTWIN_TLS__KEY_FILE", "/etc/gridtwin/tls.key")
    monkeypatch.setenv("GRIDTWIN_TLS__CA_FILE", "/etc/gridtwin/ca.crt")
    tls = Settings().tls
    assert (tls.enabled, tls.cert_file, tls.key_file, tls.ca_file) == (
        True, "/etc/gridtwin/tls.crt", "/etc/gridtwin/tls.key", "/etc/gridtwin/ca.crt")


def test_settings_that_cannot_work_are_refused():
    with pytest.raises(ValidationError, match="cert_file and key_file go together"):
        TlsSettings(enabled=True, cert_file="server.pem")
    with pytest.raises(ValidationError, match="require_client_cert needs ca_file"):
        TlsSettings(enabled=True, cert_file="s.pem", key_file="s.key", require_client_cert=True)
    client_only = TlsSettings(enabled=True, ca_file="ca.pem")   # a client: trusts a CA, has no certificate
    with pytest.raises(ValueError, match="a server needs both"):
        server_ssl_context(client_only)
    with pytest.raises(ValueError, match="a server needs both"):
        grpc_server_credentials(client_only)


async def test_disabled_tls_is_plaintext():
    assert grpc_server_credentials(None) is None
    assert grpc_server_credentials(TlsSettings(cert_file="unread.pem", key_file="unread.key")) is None
    assert server_ssl_context(TlsSettings()) is None
    channel = aio_channel("127.0.0.1:1", TlsSettings())
    await channel.close()
