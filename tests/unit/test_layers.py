"""The layers: the kernel (`gridtwin/` outside `gridtwin/app/`: settings, db pool, gRPC server,
clock) and the domain code under it never import the application root (`gridtwin.app`: the CLI,
the wiring of service processes, the local infrastructure), so the wiring can change without
touching what it wires."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOWER = ("gridtwin", "services", "actors", "simulator", "edge")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_lower_code_never_imports_the_application_root():
    offenders = []
    for top in LOWER:
        for path in (ROOT / top).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if relative.parts[:2] in {("gridtwin", "app"), ("gridtwin", "api")}:
                continue
            if any(name == "gridtwin.app" or name.startswith("gridtwin.app.") for name in _imports(path)):
                offenders.append(str(relative))
    assert not offenders, f"import the kernel, not the application root: {offenders}"


def test_the_clock_is_written_once():
    spelled = [str(path.relative_to(ROOT)) for top in (*LOWER, "bench", "tests") for path in (ROOT / top).rglob("*.py")
               if "time.time_ns() // 1_000_000" in path.read_text() and path.name != "unixtime.py"
               and path.name != Path(__file__).name]
    assert not spelled, f"use gridtwin.unixtime.now_ms: {spelled}"
