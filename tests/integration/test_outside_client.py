"""An outside client of the gRPC APIs, as a third party builds one: stubs generated straight
from proto/ (grpc_tools.protoc into a folder of its own) come out as a top-level package
`gridtwin`, which clashes with the platform's; the supported path is the generated client
package `gridtwin-api` (clients/python), built by the codegen and installed with pip. A
subprocess that cannot see the project imports it and calls a real AssetService."""

from __future__ import annotations

import asyncio
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from gridtwin.app import codegen

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

CALL = """
import importlib.util, sys
import grpc
assert importlib.util.find_spec("gridtwin") is None, "the project is visible"
from gridtwin_api.assets.v1 import assets_pb2, assets_pb2_grpc
port, token = sys.argv[1], sys.argv[2]
with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
    stub = assets_pb2_grpc.AssetServiceStub(channel)
    site = stub.GetInstallation(assets_pb2.GetInstallationRequest(installation_id="outside-1"),
                                metadata=[("authorization", f"Bearer {token}")], timeout=30)
    print(site.installation_id, site.time_zone)
    try:
        stub.GetInstallation(assets_pb2.GetInstallationRequest(installation_id="outside-1"), timeout=30)
    except grpc.RpcError as error:
        print(error.code().name)
"""


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False, **kwargs)  # type: ignore[call-overload]


def test_raw_protoc_output_is_a_package_named_like_the_project(tmp_path: Path) -> None:
    """Why the client package exists: protoc names the output after the proto folders."""
    protos = sorted(str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto").rglob("*.proto"))
    done = _run([sys.executable, "-m", "grpc_tools.protoc", "-Iproto", f"--python_out={tmp_path}",
                 f"--grpc_python_out={tmp_path}", *protos], cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "gridtwin" / "assets" / "v1" / "assets_pb2_grpc.py").exists()   # `import gridtwin…`


async def test_the_generated_client_package_installs_and_calls_a_real_server(assets, tmp_path: Path) -> None:
    await assets.installation("outside-1", -122.27, 37.80)
    # Built the way the codegen builds clients/python: protoc into a temporary folder, imports renamed.
    source = tmp_path / "gridtwin-api"
    shutil.copytree(ROOT / "clients" / "python", source, ignore=shutil.ignore_patterns("src", "build", "*.egg-info"))
    codegen.generate_client(source / "src" / "gridtwin_api")
    target = tmp_path / "site"
    installed = await asyncio.to_thread(_run, [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                                               "--no-index", "--no-build-isolation", "--target", str(target),
                                               str(source)])
    assert installed.returncode == 0, installed.stderr
    assert (target / "gridtwin_api" / "assets" / "v1" / "assets_pb2.pyi").exists()
    assert (target / "gridtwin_api" / "py.typed").exists()

    # -S: no site-packages of the venv, so neither the project's editable install nor the
    # checkout (cwd is elsewhere) is importable; grpcio and protobuf come from their folder.
    (runtime,) = site.getsitepackages()[:1]
    env = {"PYTHONPATH": f"{target}:{runtime}", "PATH": "/usr/bin:/bin"}
    called = await asyncio.to_thread(_run, [sys.executable, "-S", "-c", CALL, str(assets.api.port), assets.root],
                                     cwd=tmp_path, env=env)
    assert called.returncode == 0, called.stderr
    assert called.stdout.split() == ["outside-1", "America/Los_Angeles", "UNAUTHENTICATED"]


def test_the_checked_in_client_package_is_current() -> None:
    assert [p for p in codegen.check() if p.startswith("clients/")] == []
