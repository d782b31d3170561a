"""The CLI's pure parts: the configuration file (contexts, round trip, refusals), the one map from
gRPC status to message and exit code, and json / csv output that parses."""

from __future__ import annotations

import csv
import io
import json
import os
import stat

import grpc
import pytest

from gridtwin.app.cli import config, errors, output


def test_contexts_round_trip_and_are_written_privately(tmp_path):
    file = tmp_path / "deep" / "config.toml"
    cfg = config.Config("prod", {
        "prod": config.Context("prod", server="grid.example", servers={"vpp": "vpp.example:443"},
                               ca_file="/etc/ca.pem", token='t"o\\ken', username="ops", expires_unix_ms=42),
        "local": config.Context("local")})
    config.save(cfg, file)
    assert stat.S_IMODE(os.stat(file).st_mode) == 0o600
    assert config.load(file) == cfg
    assert config.load(tmp_path / "absent.toml") == config.Config()


def test_the_configuration_path_follows_the_environment(tmp_path):
    assert config.path({"GRIDTWIN_CONFIG": str(tmp_path / "c.toml")}) == tmp_path / "c.toml"
    assert config.path({"XDG_CONFIG_HOME": "/x"}).as_posix() == "/x/gridtwin/config.toml"


@pytest.mark.parametrize("text", [
    "current-context = ",                                           # not TOML
    '[contexts.a]\nservers = { mystery = "h:1" }',                  # an unknown service
    '[contexts.a]\nsevrer = "typo"',                                # an unknown key
])
def test_a_broken_configuration_is_a_usage_error(text):
    with pytest.raises(errors.CliError) as refused:
        config.parse(text, "config.toml")
    assert refused.value.exit_code == errors.USAGE and "config.toml" in refused.value.message


def test_an_unknown_context_is_refused():
    with pytest.raises(errors.CliError, match="no context 'b'"):
        config.Config("a", {"a": config.Context("a")}).context("b")
    assert config.Config().context() is None


class _Failed(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(("code", "exit_code", "says"), [
    (grpc.StatusCode.NOT_FOUND, 3, "not found: event x"),
    (grpc.StatusCode.UNAUTHENTICATED, 4, "gridtwin login"),
    (grpc.StatusCode.PERMISSION_DENIED, 5, "permission denied"),
    (grpc.StatusCode.UNAVAILABLE, 6, "vpp at 10.0.0.1:50057 is unavailable"),
    (grpc.StatusCode.DEADLINE_EXCEEDED, 6, "slow"),
    (grpc.StatusCode.INVALID_ARGUMENT, 2, "invalid argument"),
    (grpc.StatusCode.FAILED_PRECONDITION, 1, "refused"),
    (grpc.StatusCode.INTERNAL, 1, "refused"),
])
def test_every_status_becomes_one_line_and_an_exit_code(code, exit_code, says):
    error = errors.from_rpc(_Failed(code, "event x\n  (detail on a second line)"), "vpp", "10.0.0.1:50057")
    assert error.exit_code == exit_code and says in error.message and "\n" not in error.message


def test_json_and_csv_parse_and_keep_every_column(capsys):
    rows = [{"id": "a-very-long-installation-id-" + "x" * 80, "kw": 1.5, "note": None}]
    output.emit(rows, ("id", "kw", "note"), output.Format.json)
    assert json.loads(capsys.readouterr().out) == rows
    output.emit(rows, ("id", "kw", "note"), output.Format.csv)
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert row == {"id": rows[0]["id"], "kw": "1.5", "note": ""}
    output.emit(rows, ("id", "kw", "note"), output.Format.table)
    assert rows[0]["id"] in capsys.readouterr().out       # piped: the whole id on one line
    output.emit([], ("id",), output.Format.table, empty="nothing here")
    captured = capsys.readouterr()
    assert captured.out == "" and "nothing here" in captured.err
