"""The one narrow interface every device family sits behind, and the errors it may raise.

An adapter reads its device (`read` → a `Snapshot`: readings with units and timestamps) and, when
it is the installation's controllable source, applies device actions (`apply` → a detail for the
acknowledgement, or a `SourceError` whose text becomes the REJECTED reason). Sources that push
(a P1 meter's telegrams, MQTT messages) keep the newest values from a background reader that
`start` runs; their `read` answers from it, and `drain_errors` hands over what went wrong
meanwhile (a telegram with a bad CRC, a payload that is not a number) so the agent counts it.

Errors are translated at this boundary (`raise TimedOut(...) from exc`); the agent counts them by
`kind`, logs them, and keeps polling this and every other source:

    SourceError
     ├── Unreachable     connection refused or reset, no route, the serial port gone   "unreachable"
     ├── TimedOut        no answer in time                                             "timeout"
     ├── BadAnswer       not JSON, fields missing, a unit it does not know             "bad_answer"
     ├── ChecksumError   a telegram whose CRC does not match                           "crc"
     ├── LoginRefused    the device refused the configured credentials                 "login_refused"
     ├── DeviceRefused   the device answered with an error (Modbus exception, HTTP 4xx) "refused"
     └── NoReading       nothing received yet                                          "no_reading"
"""

from __future__ import annotations

import abc
import asyncio
from typing import ClassVar

from edge.clock import Clock
from edge.control import NO_CONTROL, Capabilities, DeviceAction
from edge.model import DeviceState, Snapshot


class SourceError(Exception):
    kind: ClassVar[str] = "error"


class Unreachable(SourceError):
    kind = "unreachable"


class TimedOut(SourceError):
    kind = "timeout"


class BadAnswer(SourceError):
    kind = "bad_answer"


class ChecksumError(SourceError):
    kind = "crc"


class LoginRefused(SourceError):
    kind = "login_refused"


class DeviceRefused(SourceError):
    kind = "refused"


class NoReading(SourceError):
    kind = "no_reading"


class Adapter(abc.ABC):
    """A source of readings; optionally the device that takes commands (`capabilities`)."""

    kind: ClassVar[str]

    def __init__(self, name: str, clock: Clock) -> None:
        self.name = name
        self.clock = clock
        self._errors: list[SourceError] = []   # what background readers met, until drained

    async def start(self) -> None:  # noqa: B027 (most adapters need nothing here)
        """Opens sessions and starts background readers."""

    async def stop(self) -> None:  # noqa: B027
        """Ends what `start` began; idempotent."""

    @abc.abstractmethod
    async def read(self) -> Snapshot:
        """The device's readings now (or, for pushing sources, the newest received)."""

    def drain_errors(self) -> list[SourceError]:
        """What went wrong in background readers since the last call."""
        errors, self._errors = self._errors, []
        return errors

    def describe(self) -> str:
        return f"{self.kind} {self.name}"

    # ------------------------------------------------------------ control (only some adapters)

    @property
    def capabilities(self) -> Capabilities:
        return NO_CONTROL

    async def apply(self, action: DeviceAction) -> str:
        raise DeviceRefused(f"{self.describe()} takes no commands")

    async def device_state(self) -> DeviceState:
        return DeviceState()

    def battery_limits(self) -> tuple[float | None, float | None]:
        """(state of charge %, max battery power W) as last read, for running plans."""
        return None, None


class PushedAdapter(Adapter):
    """A device that pushes its readings (a P1 port, an MQTT broker): one owned background task
    (`_run`, which reconnects by itself) receives them; `read` answers the newest."""

    _task: asyncio.Task[None] | None = None

    @abc.abstractmethod
    async def _run(self) -> None:
        """Receives until cancelled, recording what goes wrong in `self._errors`."""

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"{self.kind} {self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
