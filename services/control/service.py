"""The control plane's Python API: what the gRPC ControlService and, in-process, the VPP
dispatcher call. Validation happens here; storage is `CommandStore`; delivery is the
`Dispatcher`'s (a NOTIFY from the insert wakes it, so nothing needs to be called to send).

For the VPP (thousands of plans in one call, one transaction per `chunk` commands, a constant
number of statements each, never a round trip per command)::

    control = Control(CommandStore(pool))
    fanout = await control.open_fanout(source="vpp", kind=CommandKind.CONTROL_PLAN, idempotency_key=f"event:{id}")
    results = await control.submit_plans(
        [PlanRequest(installation_id, ControlPlan(steps=(PlanStep(t0, t1, ChargeTo(100)),
                                                         PlanStep(t1, t2, Discharge(5_000, 20)))),
                     idempotency_key=f"event:{id}:{installation_id}") for installation_id in participants],
        source="vpp", ttl_s=900, fanout_id=fanout)
    # results[i]: Submitted(command, deduplicated) or Refusal(error) — in input order
    progress = await control.progress(fanout)          # counts by state, failures with reasons
    commands = await control.fanout_commands(fanout)   # every command with its state, outcome, times
    async for p in control.watch_progress(fanout, interval_s=0.5): ...   # until done

Guarantees: an item with an idempotency key already stored with the same request returns the
stored command (`deduplicated=True`), with a different request it is refused (`Conflict`);
a bad item is refused (`InvalidArgument`, `NotFound`) and the rest of the batch is stored; a newer
control plan supersedes the device's older pending ones (state superseded, never sent again).
Times are integer ms since the Unix epoch; `now` comes from `clock_ms` (tests pass their own).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass

from gridtwin.unixtime import now_ms
from services.control import validation
from services.control.convert import spec_bytes
from services.control.model import (
    Command,
    CommandKind,
    CommandSpec,
    CommandState,
    ControlPlan,
    FanOutId,
    FanOutProgress,
    InvalidArgument,
    NotFound,
    kind_of,
)
from services.control.store import CommandStore, NewCommand, Refusal, SubmitResult, Submitted, request_hash

__all__ = ["Control", "PlanRequest", "NewCommand", "Submitted", "Refusal", "SubmitResult"]


@dataclass(frozen=True)
class PlanRequest:
    """A control plan for the battery device of one installation."""

    installation_id: str
    plan: ControlPlan
    idempotency_key: str | None = None
    ttl_s: float | None = None       # None: the batch's ttl_s


class Control:
    def __init__(self, store: CommandStore, *, clock_ms: Callable[[], int] = now_ms, chunk: int = 5_000) -> None:
        self.store = store
        self._clock_ms = clock_ms
        self._chunk = chunk

    # ------------------------------------------------------------ submitting

    def _validated(self, item: NewCommand, now_ms: int, where: str) -> NewCommand:
        if (item.device_id is None) == (item.installation_id is None):
            raise InvalidArgument(where, "name exactly one target: device_id or installation_id")
        if item.device_id is not None:
            validation.parse_id(item.device_id, f"{where}device_id")
        if item.installation_id is not None:
            validation.parse_id(item.installation_id, f"{where}installation_id")
        validation.parse_ttl_s(item.ttl_s, f"{where}ttl_s")
        if item.idempotency_key is not None:
            validation.parse_key(item.idempotency_key, f"{where}idempotency_key")
        validation.validate_spec(item.spec, now_ms, f"{where}spec")
        return item

    async def submit(self, items: Sequence[NewCommand], *, source: str = "api",
                     fanout_id: FanOutId | None = None) -> list[SubmitResult]:
        """Stores a batch of commands; one result per item, in order (see the module docstring)."""
        source = validation.parse_source(source)
        now_ms = self._clock_ms()
        results: list[SubmitResult | None] = [None] * len(items)
        good: list[tuple[int, NewCommand]] = []
        for i, item in enumerate(items):
            try:
                good.append((i, self._validated(item, now_ms, f"[{i}]." if len(items) > 1 else "")))
            except InvalidArgument as error:
                results[i] = Refusal(error)
        for start in range(0, len(good), self._chunk):
            chunk = good[start:start + self._chunk]
            stored = await self.store.submit([item for _, item in chunk], source=source, now_ms=now_ms,
                                             fanout_id=fanout_id)
            for (i, _), result in zip(chunk, stored, strict=True):
                results[i] = result
        return [r for r in results if r is not None]

    async def submit_plans(self, plans: Sequence[PlanRequest], *, source: str, ttl_s: float,
                           fanout_id: FanOutId | None = None) -> list[SubmitResult]:
        """Control plans by installation id (each to its battery device), in one batch."""
        return await self.submit([NewCommand(p.plan, p.ttl_s if p.ttl_s is not None else ttl_s,
                                             installation_id=p.installation_id, idempotency_key=p.idempotency_key)
                                  for p in plans], source=source, fanout_id=fanout_id)

    async def submit_one(self, item: NewCommand, *, source: str = "api") -> Submitted:
        """One command; raises the refusal's error (InvalidArgument, NotFound, Conflict)."""
        (result,) = await self.submit([item], source=source)
        if isinstance(result, Refusal):
            raise result.error
        return result

    async def open_fanout(self, *, source: str, kind: CommandKind | None = CommandKind.CONTROL_PLAN,
                          group_path: str | None = None, idempotency_key: str | None = None) -> FanOutId:
        """A fan-out id to pass to `submit`/`submit_plans` (a known key returns its fan-out)."""
        fanout_id, _ = await self.store.create_fanout(
            source=validation.parse_source(source), kind=kind, group_path=group_path,
            idempotency_key=validation.parse_key(idempotency_key or ""), now_ms=self._clock_ms())
        return fanout_id

    async def submit_group(self, group_path: str, spec: CommandSpec, *, ttl_s: float, source: str = "api",
                           idempotency_key: str | None = None) -> tuple[FanOutId, int, bool]:
        """The same command to the battery device of every installation in the group (and below):
        (fan-out id, commands created, deduplicated). Resubmitting with the same key completes
        a fan-out that was cut short and creates nothing twice."""
        from services.assets.errors import InvalidArgument as AssetInvalid
        from services.assets.paths import parse_path

        try:
            path = parse_path(group_path, "group_path")
        except AssetInvalid as error:
            raise InvalidArgument("group_path", str(error)) from error
        now_ms = self._clock_ms()
        source = validation.parse_source(source)
        validation.parse_ttl_s(ttl_s)
        key = validation.parse_key(idempotency_key or "")
        spec = validation.validate_spec(spec, now_ms)
        targets = await self.store.group_targets(path)
        fanout_id, deduplicated = await self.store.create_fanout(
            source=source, kind=kind_of(spec), group_path=path, idempotency_key=key,
            request_hash=request_hash(f"group:{path}", spec_bytes(spec), ttl_s) if key else None, now_ms=now_ms)
        items = [NewCommand(spec, ttl_s, device_id=device, idempotency_key=f"{key}:{device}" if key else None)
                 for _, device in targets]
        created = 0
        for start in range(0, len(items), self._chunk):
            results = await self.store.submit(items[start:start + self._chunk], source=source, now_ms=now_ms,
                                              fanout_id=fanout_id)
            created += sum(1 for r in results if isinstance(r, Submitted) and not r.deduplicated)
        return fanout_id, created, deduplicated and created == 0

    # ------------------------------------------------------------ reading

    async def get(self, command_id: str) -> Command:
        return await self.store.get(validation.parse_command_id(command_id))

    async def list_for_installation(self, installation_id: str, *, limit: int = 100, page_token: str = "",
                                    states: Iterable[CommandState] = ()) -> tuple[list[Command], str]:
        validation.parse_id(installation_id, "installation_id")
        if not 1 <= limit <= 1_000:
            raise InvalidArgument("page_size", "1 to 1000")
        before = validation.parse_command_id(page_token, "page_token") if page_token else None
        if not await self.store.installation_exists(installation_id):
            raise NotFound(f"installation {installation_id!r} does not exist")
        commands = await self.store.list_for_installation(installation_id, limit=limit, before_id=before,
                                                          states=states)
        token = commands[-1].record.command_id if len(commands) == limit else ""
        return commands, token

    async def progress(self, fanout_id: str, *, max_failures: int = 100) -> FanOutProgress:
        return await self.store.progress(validation.parse_fanout_id(fanout_id), max_failures=max_failures)

    async def fanout_commands(self, fanout_id: str) -> list[Command]:
        """Every command of a fan-out with its state, outcome and times (acked_ms, completed_ms)."""
        return await self.store.fanout_commands(validation.parse_fanout_id(fanout_id))

    async def watch_progress(self, fanout_id: str, *, interval_s: float = 0.5,
                             max_failures: int = 100) -> AsyncIterator[FanOutProgress]:
        """The progress now, then each change (checked every `interval_s`), until it is done."""
        last = None
        while True:
            progress = await self.progress(fanout_id, max_failures=max_failures)
            if progress != last:
                yield progress
                last = progress
            if progress.done:
                return
            await asyncio.sleep(interval_s)

    # ------------------------------------------------------------ cancelling

    async def cancel(self, command_id: str) -> Command:
        return await self.store.cancel(validation.parse_command_id(command_id), self._clock_ms())

    async def cancel_fanout(self, fanout_id: str) -> FanOutProgress:
        fanout = validation.parse_fanout_id(fanout_id)
        await self.store.cancel_fanout(fanout, self._clock_ms())
        return await self.store.progress(fanout)

