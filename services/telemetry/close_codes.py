"""Websocket close codes the gateway uses: the one place that maps session outcomes to codes.

1xxx are RFC 6455 codes; 4xxx are the application's own (RFC 6455 §7.4.2 reserves 4000–4999).
A device reconnects (with backoff) after 1001, 1011, 1013, 4004 and 4005; after 4001 it must not
retry with the same credential; after 1007/1009/4000/4003 it has a bug to fix.
"""

from enum import IntEnum


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001            # gateway shutting down: reconnect elsewhere
    MALFORMED_FRAME = 1007       # not a DeviceFrame, or a text frame
    MESSAGE_TOO_BIG = 1009       # frame larger than the gateway's limit
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013       # the broker is unavailable: nothing was acknowledged, replay later
    PROTOCOL_VIOLATION = 4000    # e.g. telemetry before Hello, a second Hello, an empty frame
    AUTHENTICATION_FAILED = 4001  # unknown device, bad or revoked credential
    HELLO_TIMEOUT = 4002
    UNSUPPORTED_PROTOCOL = 4003
    SESSION_REPLACED = 4004      # the same device opened a newer session
    EVENTS_RATE_LIMITED = 4005   # command acks / state reports far beyond any command rate: back off
