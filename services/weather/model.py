"""The weather domain as plain values: one normalized alert, whatever provider it came from.

Times are timezone-aware UTC datetimes. Areas are WKT in WGS 84 longitude/latitude degrees
(SRID 4326), a valid, non-empty Polygon or MultiPolygon; `bbox` is its envelope as
(min_longitude_deg, min_latitude_deg, max_longitude_deg, max_latitude_deg). An alert may have no
known area (`area_known` false: `area_wkt` is "" and `bbox` None) when it came without a polygon
and none of its zones is in the zone table: it is stored and shown, but matched to nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NewType

AlertId = NewType("AlertId", str)
ZoneCode = NewType("ZoneCode", str)   # a UGC code: ORZ004 (forecast zone), IAC009 (county)

BBox = tuple[float, float, float, float]


class MessageType(StrEnum):
    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"


class AlertState(StrEnum):
    ACTIVE = "active"
    SUPERSEDED = "superseded"   # an Update (or a newer message of its thread) replaced it
    CANCELLED = "cancelled"     # a Cancel ended it
    EXPIRED = "expired"         # its end time passed
    CANCEL = "cancel"           # the Cancel message itself (never active)


class ChangeKind(StrEnum):
    """What one ingested message did to the set of active alerts (past tense: these are events)."""

    ACTIVATED = "activated"     # a new active alert
    UPDATED = "updated"         # an active alert replaced by its Update (`replaces` lists the old ids)
    ENDED = "ended"             # cancelled or expired (`reason`)


@dataclass(frozen=True)
class Alert:
    alert_id: AlertId
    event: str                      # "Tornado Warning", "Hurricane Warning", ...
    message_type: MessageType
    severity: str                   # CAP: Extreme, Severe, Moderate, Minor, Unknown
    urgency: str                    # CAP: Immediate, Expected, Future, Past, Unknown
    certainty: str                  # CAP: Observed, Likely, Possible, Unlikely, Unknown
    sent: dt.datetime
    onset: dt.datetime | None
    expires: dt.datetime | None
    ends: dt.datetime | None
    area_wkt: str                   # "" when the area is unknown (see the module docstring)
    bbox: BBox | None
    references: tuple[AlertId, ...] = ()
    zones: tuple[ZoneCode, ...] = ()
    headline: str = ""
    sender_name: str = ""
    area_desc: str = ""
    # Zones the alert named that the zone table does not know (the rest of the area is used).
    unresolved_zones: tuple[ZoneCode, ...] = ()
    repaired: str = ""              # why the area was repaired ("" when it was valid as sent)

    @property
    def area_known(self) -> bool:
        return bool(self.area_wkt)

    @property
    def start(self) -> dt.datetime:
        """When the hazard begins: onset, else when the message was sent."""
        return self.onset or self.sent

    @property
    def end(self) -> dt.datetime | None:
        """When the hazard ends: `ends`, else `expires` (None: open-ended)."""
        return self.ends or self.expires


@dataclass(frozen=True)
class Rejection:
    """A feed entry that did not become an alert, and why (nothing malformed reaches the twins)."""

    source: str
    alert_id: str
    reason: str


@dataclass(frozen=True)
class StoredAlert:
    """An alert as the lifecycle knows it: the message and what became of it."""

    alert: Alert
    state: AlertState
    ended_at: dt.datetime | None = None
    superseded_by: AlertId | None = None


@dataclass(frozen=True)
class AlertChange:
    """One change of the active set. For ACTIVATED/UPDATED `alert` is the now-active message; for
    ENDED it is the message that ended (with `reason`: cancelled, expired, superseded)."""

    kind: ChangeKind
    alert: Alert
    at: dt.datetime
    replaces: tuple[AlertId, ...] = ()
    reason: str = ""
    cancelled_by: AlertId | None = None


@dataclass(frozen=True)
class ParseResult:
    alerts: tuple[Alert, ...] = ()
    rejections: tuple[Rejection, ...] = field(default_factory=tuple)
