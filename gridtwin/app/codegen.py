"""Regenerates the Python code of the `.proto` contracts into `gridtwin/api/`.

`gridtwin/api/` is generated and nobody edits it by hand. The protos live under
`proto/gridtwin/<domain>/v1/`, so protoc writes `from gridtwin.<domain>.v1 import ...`; those
imports are rewritten to `gridtwin.api.<domain>.v1` so the generated modules sit in one package
beside the hand-written code (the way Temporal's SDK does it). `check()` regenerates into a
temporary folder and reports every difference, so CI fails when someone forgets to regenerate.
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

_IMPORT = re.compile(r"^(from|import) gridtwin\.(?!api\b)", re.MULTILINE)


def _generate_into(target: Path) -> None:
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
            path.write_text(_IMPORT.sub(r"\1 gridtwin.api.", path.read_text()))
        for folder in [generated, *(p for p in generated.rglob("*") if p.is_dir())]:
            (folder / "__init__.py").touch()
        banner = '"""Generated from proto/ by `gridtwin proto generate`. Do not edit."""\n'
        (generated / "__init__.py").write_text(banner)
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(generated, target)


def generate() -> Path:
    _generate_into(OUTPUT)
    return OUTPUT


def check() -> list[str]:
    """Paths (relative to gridtwin/api) that differ from a fresh generation; empty when in sync."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "api"
        _generate_into(fresh)
        return sorted(_differences(fresh, OUTPUT))


def _differences(fresh: Path, current: Path) -> set[str]:
    def files(root: Path) -> set[str]:
        if not root.exists():
            return set()
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}

    a, b = files(fresh), files(current)
    changed = {f for f in a & b if not filecmp.cmp(fresh / f, current / f, shallow=False)}
    return (a ^ b) | changed
