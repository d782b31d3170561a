"""How the `gridtwin` command fails: one line on stderr and an exit code, never a traceback.

Exit codes (also in `gridtwin --help`):

    0  done
    1  refused: the server (or this command) refused the request as it stands
    2  bad arguments: a usage error found before anything is sent, or a request the server
       refused as INVALID_ARGUMENT / OUT_OF_RANGE (the message names the field)
    3  not found
    4  not authenticated: no token, or one that is unknown, expired or revoked (`gridtwin login`)
    5  permission denied: the token's scopes or groups do not cover the request
    6  unavailable: the service could not be reached or did not answer in time

`from_rpc` is the one place where a gRPC status becomes a message and an exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import grpc
from typer import Abort
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError  # typer's own click
from typer.core import TyperGroup

REFUSED, USAGE, NOT_FOUND, UNAUTHENTICATED, PERMISSION_DENIED, UNAVAILABLE = 1, 2, 3, 4, 5, 6

EXIT_CODES_HELP = ("Exit codes: 0 done, 1 refused, 2 bad arguments, 3 not found, 4 not authenticated "
                   "(gridtwin login), 5 permission denied, 6 service unavailable.")


class CliError(ClickException):
    """A failure the user can act on: printed as one line on stderr, the process exits with
    `exit_code`. Raise it anywhere under a command; the command loop prints it."""

    def __init__(self, message: str, exit_code: int = REFUSED) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: object = None) -> None:
        print(f"error: {self.message}", file=sys.stderr)


_BY_STATUS: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (USAGE, "invalid argument"),
    grpc.StatusCode.OUT_OF_RANGE: (USAGE, "invalid argument"),
    grpc.StatusCode.NOT_FOUND: (NOT_FOUND, "not found"),
    grpc.StatusCode.UNAUTHENTICATED: (UNAUTHENTICATED, "not authenticated"),
    grpc.StatusCode.PERMISSION_DENIED: (PERMISSION_DENIED, "permission denied"),
    grpc.StatusCode.UNAVAILABLE: (UNAVAILABLE, "unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (UNAVAILABLE, "no answer in time"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (REFUSED, "refused (limit)"),
}


def from_rpc(error: grpc.RpcError, service: str, address: str) -> CliError:
    """The message and exit code for a failed call to `service` at `address`."""
    code: grpc.StatusCode = error.code()  # type: ignore[attr-defined]
    detail: str = (error.details() or "").strip()  # type: ignore[attr-defined]
    exit_code, what = _BY_STATUS.get(code, (REFUSED, "refused"))
    detail = " ".join(detail.split())   # one line, whatever the server wrote
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return CliError(f"{what} by {service}: {detail or 'no valid token'} "
                        "(run `gridtwin login`, or pass --token / GRIDTWIN_TOKEN)", exit_code)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return CliError(f"{service} at {address} is {what if code is grpc.StatusCode.UNAVAILABLE else 'slow'}: "
                        f"{detail} (is it running? `gridtwin status`)", exit_code)
    return CliError(f"{what}: {detail}" if detail else f"{what} ({code.name})", exit_code)


def one_line(error: ClickException) -> str:
    message = " ".join(error.format_message().split())
    if isinstance(error, UsageError) and error.ctx is not None:
        return f"{message} (see `{error.ctx.command_path} --help`)"
    return message


class OneLineErrors(TyperGroup):
    """The root command group: every error a command or the argument parser raises ends as one
    line on stderr with its exit code (typer's own handling draws a multi-line box)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, windows_expand_args: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, windows_expand_args, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except NoArgsIsHelpError:
            sys.exit(USAGE)   # typer printed the help already
        except ClickException as error:
            print(f"error: {one_line(error)}", file=sys.stderr)
            sys.exit(error.exit_code)
        except Abort:
            print("aborted", file=sys.stderr)
            sys.exit(REFUSED)
        # Not standalone, click returns an Exit's code (help, typer.Exit) or the command's value.
        sys.exit(result if isinstance(result, int) else 0)
