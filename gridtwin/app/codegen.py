"""Regenerates the Python code of the `.proto` contracts into `gridtwin/api/`, and the client
package for outside callers into `clients/python/src/gridtwin_api/`.

`gridtwin/api/` is generated and nobody edits it by hand. The protos live under
`proto/gridtwin/<domain>/v1/`, so protoc writes `from gridtwin.<domain>.v1 import ...`; those
imports are rewritten to `gridtwin.api.<domain>.v1` so the generated modules sit in one package
beside the hand-written code (the way Temporal's SDK does it). `check()` regenerates into a
temporary folder and reports every difference, so CI fails when someone forgets to regenerate.

Outside clients get the same modules as their own installable package, `gridtwin-api`
(`pip install clients/python`, import `gridtwin_api.<domain>.v1`): stubs generated straight
from proto/ form a top-level package `gridtwin` that clashes with this project's. The wire
names (`gridtwin.assets.v1.AssetService`, …) are the same in both.
"""

from __future__ import annotations

import filecmp
import re
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = ROOT / "proto"
OUTPUT = ROOT / "gridtwin" / "api"
CLIENT_OUTPUT = ROOT / "clients" / "python" / "src" / "gridtwin_api"

_IMPORT = re.compile(r"^(from|import) gridtwin\.(?!api\b)", re.MULTILINE)
_CLIENT_IMPORT = re.compile(r"^(from|import) gridtwin\.", re.MULTILINE)
_BANNER = '"""Generated from proto/ by `gridtwin proto generate`. Do not edit."""\n'
_CLIENT_BANNER = ('"""The gridtwin platform\'s gRPC contracts, generated from its proto/ by `gridtwin proto '
                  'generate`. Do not edit.\n\nModules: gridtwin_api.<domain>.v1.<file>_pb2 (messages) and '
                  '<file>_pb2_grpc (stubs)."""\n')


def _generate_into(target: Path, *, client: bool = False) -> None:
    from grpc_tools import protoc  # a dev dependency: only needed to generate

    with tempfile.TemporaryDirectory() as raw_dir:
        raw = Path(raw_dir)
        protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
        include = Path(protoc.__file__).parent / "_proto"
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={raw}",
            f"--pyi_out={raw}",
            f"--grpc_python_out={raw}",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed: " + " ".join(args))
        generated = raw / "gridtwin"
        for path in sorted(generated.rglob("*.py*")):
            text = path.read_text()
            path.write_text(_CLIENT_IMPORT.sub(r"\1 gridtwin_api.", text) if client
                            else _IMPORT.sub(r"\1 gridtwin.api.", text))
        for folder in [generated, *(p for p in generated.rglob("*") if p.is_dir())]:
            (folder / "__init__.py").touch()
        (generated / "__init__.py").write_text(_CLIENT_BANNER if client else _BANNER)
        if client:
            (generated / "py.typed").touch()   # the .pyi stubs type-check callers (PEP 561)
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(generated, target)


def generate() -> Path:
    _generate_into(OUTPUT)
    _generate_into(CLIENT_OUTPUT, client=True)
    return OUTPUT


def generate_client(target: Path) -> Path:
    """The outside clients' package `gridtwin_api` written into the folder `target`."""
    _generate_into(target, client=True)
    return target


def check() -> list[str]:
    """Paths (relative to gridtwin/api, or clients/… for the client package) that differ from a
    fresh generation; empty when in sync."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh, fresh_client = Path(tmp) / "api", Path(tmp) / "gridtwin_api"
        _generate_into(fresh)
        _generate_into(fresh_client, client=True)
        client_prefix = CLIENT_OUTPUT.relative_to(ROOT)
        return sorted([*_differences(fresh, OUTPUT),
                       *(str(client_prefix / p) for p in _differences(fresh_client, CLIENT_OUTPUT))])


def _differences(fresh: Path, current: Path) -> set[str]:
    def files(root: Path) -> set[str]:
        if not root.exists():
            return set()
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}

    a, b = files(fresh), files(current)
    changed = {f for f in a & b if not filecmp.cmp(fresh / f, current / f, shallow=False)}
    return (a ^ b) | changed
