"""Who the agent is to the gateway: a device id and its credential, kept in the disk buffer's file
(mode 0600) once known.

Three ways to know it, tried in this order:
1. stored by an earlier run (or an earlier claim);
2. a device provisioned by hand: `identity.device_id` and the credential in `identity.credential_file`;
3. a claim: an operator created the device through the AssetService (`gridtwin assets device
   claim`, or `CreateDeviceClaim`) and put the one-time code in `identity.claim_code`; the agent
   exchanges it once (`ClaimDevice`, which needs no other credential) and stores what it gets.
   Nobody copies the credential; a code that was used or expired is refused, and the agent says so.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from edge.buffer import DiskBuffer
from edge.config import IdentitySection

log = logging.getLogger(__name__)

_KEY = "identity"


@dataclass(frozen=True)
class Identity:
    device_id: str
    credential: str
    installation_id: str = ""


class ProvisioningError(Exception):
    pass


def stored(buffer: DiskBuffer) -> Identity | None:
    data = buffer.get(_KEY)
    return None if data is None else Identity(**json.loads(data))


def store(buffer: DiskBuffer, identity: Identity) -> None:
    buffer.put(_KEY, json.dumps(asdict(identity)).encode())


def resolve(section: IdentitySection, buffer: DiskBuffer) -> Identity:
    """The agent's identity, claiming it first if it must (see the module's docstring)."""
    known = stored(buffer)
    if known is not None and (not section.device_id or section.device_id == known.device_id):
        return known
    if section.device_id:
        credential = Path(section.credential_file).read_text().strip()
        identity = Identity(section.device_id, credential)
    elif section.claim_code:
        identity = claim(section)
    else:
        raise ProvisioningError("the agent has no identity yet: set identity.claim_code (from `gridtwin assets "
                                "device claim`) and identity.assets_url, or identity.device_id and credential_file")
    store(buffer, identity)
    return identity


def claim(section: IdentitySection, *, timeout_s: float = 30.0) -> Identity:
    """Exchanges the claim code for the device's credential (AssetService.ClaimDevice)."""
    import grpc  # only for the claim: an agent that runs on a stored identity never loads gRPC

    from gridtwin.api.assets.v1 import assets_pb2, assets_pb2_grpc

    if section.assets_tls:
        ca = Path(section.assets_ca_file).read_bytes() if section.assets_ca_file else None
        channel = grpc.secure_channel(section.assets_url, grpc.ssl_channel_credentials(root_certificates=ca))
    else:
        channel = grpc.insecure_channel(section.assets_url)
    try:
        reply = assets_pb2_grpc.AssetServiceStub(channel).ClaimDevice(
            assets_pb2.ClaimDeviceRequest(claim_code=section.claim_code), timeout=timeout_s)
    except grpc.RpcError as error:
        code = error.code()  # type: ignore[attr-defined]
        raise ProvisioningError(f"the claim was refused ({code.name}: {error.details()})"  # type: ignore[attr-defined]
                                if code == grpc.StatusCode.UNAUTHENTICATED else
                                f"cannot reach the AssetService at {section.assets_url}: {code.name}") from None
    finally:
        channel.close()
    log.info("claimed device %s of installation %s", reply.device.device_id, reply.device.installation_id)
    return Identity(reply.device.device_id, reply.credential, reply.device.installation_id)
