"""A client generated from the OpenAPI document by a standard generator (openapi-python-client,
in var/tools-venv: scripts/bootstrap.sh installs it) makes real calls to the real HTTP API."""

from __future__ import annotations

import asyncio
import importlib
import json
import shutil
import sys
from pathlib import Path

import pytest

from gridtwin.settings import ROOT
from services.access.model import Scope
from tests.integration.http.http_support import HttpWorld

pytestmark = pytest.mark.integration
GENERATOR = ROOT / "var" / "tools-venv" / "bin" / "openapi-python-client"


async def test_a_generated_client_reads_and_writes(http_world: HttpWorld, tmp_path: Path) -> None:
    assert GENERATOR.exists(), "scripts/bootstrap.sh installs openapi-python-client into var/tools-venv"
    async with http_world.client() as client:
        spec = (await client.get("/api/v1/openapi.json")).json()
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    process = await asyncio.create_subprocess_exec(
        str(GENERATOR), "generate", "--path", str(tmp_path / "spec.json"), "--output-path",
        str(tmp_path / "gridtwin_http_client"), "--meta", "none", cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output = (await asyncio.wait_for(process.communicate(), 300))[0].decode()
    assert process.returncode == 0, output
    assert "will not be generated" not in output and "Unable to parse" not in output, output
    sys.path.insert(0, str(tmp_path))
    try:
        generated = importlib.import_module("gridtwin_http_client")
        get_installation = importlib.import_module("gridtwin_http_client.api.assets.get_installation")
        list_alerts = importlib.import_module("gridtwin_http_client.api.twins.list_alerts")
        create_customer = importlib.import_module("gridtwin_http_client.api.assets.create_customer")
        models = importlib.import_module("gridtwin_http_client.models")
        token = await http_world.token(Scope.ADMIN)
        api = generated.AuthenticatedClient(base_url=http_world.base_url, token=token)
        installation = await get_installation.asyncio(installation_id="mx-home", client=api)
        assert installation.installation_id == "mx-home" and installation.time_zone == "America/Los_Angeles"
        alerts = await list_alerts.asyncio(client=api, page_size=1)
        assert [a.installation_id for a in alerts.alerts] == ["mx-home"]
        created = await create_customer.asyncio_detailed(client=api, body=models.CreateCustomerRequest(
            customer_id="generated-client", name="Gen"))
        assert created.status_code == 201 and created.parsed.customer_id == "generated-client"
        missing = await get_installation.asyncio_detailed(installation_id="nowhere", client=api)
        assert missing.status_code in (403, 404) and missing.parsed.status == missing.status_code
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith("gridtwin_http_client")]:
            del sys.modules[name]
        shutil.rmtree(tmp_path / "gridtwin_http_client", ignore_errors=True)
