"""Readings of several sources → one sample of the installation. Pure: takes `now_ms`.

Rules, in order (`Combination` holds the policy):
- A reading older than its source's `max_age_ms` at `now_ms` is ignored: a source that stopped
  answering leaves its signals unreported, it does not freeze them.
- A signal assigned to a source (`owners`) comes from that source only. Otherwise it comes from
  the first source in `order` that reports it fresh (a P1 meter listed before the inverter wins
  the site power, say).
- `derive_load_from`: when the load is not measured and every listed signal is, the load is their
  sum (site + solar for a home with a P1 meter and a PV inverter and no battery). It is computed
  only from measured values; otherwise the load stays unreported.
- Extras (`grid_frequency_hz`, ...) follow the same first-fresh rule; the grid status too.
- A sample that would report none of the five signals is not made (the cloud refuses it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from edge.model import LOAD, SIGNALS, GridStatus, SampleValues, Snapshot


@dataclass(frozen=True)
class Combination:
    order: tuple[str, ...]                           # source names, first wins
    max_age_ms: Mapping[str, int]                     # per source
    owners: Mapping[str, str] = field(default_factory=dict)   # signal → source
    derive_load_from: tuple[str, ...] = ()


def combine(snapshots: Mapping[str, Snapshot], now_ms: int, policy: Combination) -> SampleValues | None:
    fresh = _fresh_values(snapshots, now_ms, policy)
    values: dict[str, float] = {}
    for signal in SIGNALS:
        owner = policy.owners.get(signal)
        candidates: Sequence[str] = (owner,) if owner is not None else policy.order
        for source in candidates:
            value = fresh.get(source, {}).get(signal)
            if value is not None:
                values[signal] = value
                break
    if LOAD not in values and policy.derive_load_from and all(s in values for s in policy.derive_load_from):
        values[LOAD] = sum(values[s] for s in policy.derive_load_from)
    if not values:
        return None
    extra: dict[str, float] = {}
    for source in policy.order:
        for name, value in fresh.get(source, {}).items():
            if name not in SIGNALS and name not in extra:
                extra[name] = value
    return SampleValues(timestamp_ms=now_ms, grid_status=_grid_status(snapshots, now_ms, policy),
                        extra=tuple(sorted(extra.items())), **values)


def _fresh_values(snapshots: Mapping[str, Snapshot], now_ms: int, policy: Combination) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for source in policy.order:
        snapshot = snapshots.get(source)
        if snapshot is None:
            continue
        oldest_ms = now_ms - policy.max_age_ms.get(source, 0)
        values: dict[str, float] = {}
        for reading in snapshot.readings:
            if reading.at_ms >= oldest_ms and reading.signal not in values:
                values[reading.signal] = reading.value
        out[source] = values
    return out


def _grid_status(snapshots: Mapping[str, Snapshot], now_ms: int, policy: Combination) -> GridStatus | None:
    for source in policy.order:
        snapshot = snapshots.get(source)
        if (snapshot is not None and snapshot.grid_status is not None
                and snapshot.at_ms >= now_ms - policy.max_age_ms.get(source, 0)):
            return snapshot.grid_status
    return None
