"""A realistic demo fleet (`gridtwin assets seed`): customers, installations spread over a few
utilities and regions, two hierarchies (utility.<utility>.<region> and
region.us.<state>.<region>), a VPP program with installations in every enrollment state, and
one gateway device per installation.

Ids follow the simulator's (`<prefix>-site-00042`, `<prefix>-dev-00042`) and device credentials
derive from the fleet secret like the simulator's, so `gridtwin simulate` streams as the seeded
installations. The same `seed` gives the same fleet.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from services.access.credentials import fleet_credential, hash_credential
from services.assets.bulk import DeviceRecord, FleetData
from services.assets.model import (
    Customer,
    CustomerId,
    EnrollmentState,
    GeoPoint,
    Group,
    GroupPath,
    Installation,
    InstallationId,
    InstallationSettings,
    Priority,
)


@dataclass(frozen=True)
class Region:
    utility: str             # ltree label
    utility_name: str
    label: str               # ltree label
    name: str
    state: str               # US state, lower case (ltree label)
    city: str
    center: GeoPoint
    spread_deg: float        # standard deviation of the installations' offsets
    time_zone: str
    weight: float            # share of the fleet


REGIONS: tuple[Region, ...] = (
    Region("pge", "Pacific Gas and Electric", "north_ca", "Northern California", "ca", "Sacramento",
           GeoPoint(-121.4944, 38.5816), 0.35, "America/Los_Angeles", 0.14),
    Region("pge", "Pacific Gas and Electric", "bay_area", "Bay Area", "ca", "San Jose",
           GeoPoint(-121.8863, 37.3382), 0.25, "America/Los_Angeles", 0.18),
    Region("pge", "Pacific Gas and Electric", "central_valley", "Central Valley", "ca", "Fresno",
           GeoPoint(-119.7871, 36.7378), 0.30, "America/Los_Angeles", 0.08),
    Region("sce", "Southern California Edison", "la_basin", "Los Angeles Basin", "ca", "Los Angeles",
           GeoPoint(-118.2437, 34.0522), 0.25, "America/Los_Angeles", 0.18),
    Region("sce", "Southern California Edison", "inland_empire", "Inland Empire", "ca", "Riverside",
           GeoPoint(-117.3962, 33.9533), 0.25, "America/Los_Angeles", 0.08),
    Region("sdge", "San Diego Gas & Electric", "san_diego", "San Diego", "ca", "San Diego",
           GeoPoint(-117.1611, 32.7157), 0.15, "America/Los_Angeles", 0.08),
    Region("oncor", "Oncor", "dallas", "Dallas-Fort Worth", "tx", "Dallas",
           GeoPoint(-96.7970, 32.7767), 0.30, "America/Chicago", 0.10),
    Region("austin_energy", "Austin Energy", "austin", "Austin", "tx", "Austin",
           GeoPoint(-97.7431, 30.2672), 0.15, "America/Chicago", 0.06),
    Region("fpl", "Florida Power & Light", "south_fl", "South Florida", "fl", "Miami",
           GeoPoint(-80.1918, 25.7617), 0.20, "America/New_York", 0.06),
)

# Battery systems seen in the real Powerwall gateway fixtures (../shared/data/powerwall):
# site_info of one Powerwall 2 (13.5 kWh nominal) and of two (27 kWh, 10.8 kW); a Powerwall 3
# (13.5 kWh, 11.5 kW continuous) from its datasheet.
BATTERIES: tuple[tuple[float, float, float], ...] = (   # (energy_wh, power_w, share)
    (13_500.0, 5_000.0, 0.55),
    (27_000.0, 10_800.0, 0.25),
    (13_500.0, 11_500.0, 0.20),
)
RESERVES_PCT = ((20.0, 0.6), (30.0, 0.15), (50.0, 0.15), (81.0, 0.1))   # 81 %: the pypowerwall fixture
STREETS = ("Oak", "Maple", "Cedar", "Pine", "Elm", "Sunset", "Mission", "Hillside", "Lake", "Park", "Main", "Vista")
SUFFIXES = ("St", "Ave", "Blvd", "Dr", "Ln", "Ct", "Way")
FIRST = ("Ana", "Ben", "Chen", "Dana", "Eli", "Fatima", "Gabe", "Hana", "Ivan", "Jada", "Kai", "Luis", "Maya", "Noor")
LAST = ("Garcia", "Nguyen", "Smith", "Patel", "Kim", "Johnson", "Lopez", "Brown", "Singh", "Martinez", "Chen", "Davis")


@dataclass(frozen=True)
class FleetPlan:
    installations: int = 10_000
    seed: int = 1
    prefix: str = "demo"
    fleet_secret: str = "gridtwin-demo-fleet"
    program: GroupPath = GroupPath("program.ca_vpp")
    program_name: str = "California VPP"
    program_states: Sequence[str] | None = ("ca",)   # None: every state
    program_share: float = 0.8                        # of the installations in those states
    # Of the program's installations: enrolled, pending, eligible.
    enrollment_mix: tuple[float, float, float] = (0.6, 0.15, 0.25)


def _pick(rng: random.Random, weighted: Sequence[tuple[float, float]]) -> float:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def installation_id(prefix: str, index: int) -> InstallationId:
    return InstallationId(f"{prefix}-site-{index:05d}")


def device_id(prefix: str, index: int) -> str:
    return f"{prefix}-dev-{index:05d}"


def demo_fleet(plan: FleetPlan) -> FleetData:
    rng = random.Random(plan.seed)
    regions = rng.choices(REGIONS, weights=[r.weight for r in REGIONS], k=plan.installations)
    customers, installations, memberships, enrollments, devices = [], [], [], [], []
    states = [EnrollmentState.ENROLLED, EnrollmentState.PENDING, EnrollmentState.ELIGIBLE]
    for index, region in enumerate(regions):
        iid = installation_id(plan.prefix, index)
        cid = CustomerId(f"{plan.prefix}-cust-{index:05d}")
        customers.append(Customer(cid, f"{rng.choice(FIRST)} {rng.choice(LAST)}", f"customer{index}@example.com"))
        longitude = region.center.longitude_deg + max(-3, min(3, rng.gauss(0, 1))) * region.spread_deg
        latitude = region.center.latitude_deg + max(-3, min(3, rng.gauss(0, 1))) * region.spread_deg
        energy_wh, power_w, _ = rng.choices(BATTERIES, weights=[b[2] for b in BATTERIES])[0]
        installations.append(Installation(
            installation_id=iid, customer_id=cid, location=GeoPoint(round(longitude, 6), round(latitude, 6)),
            address=f"{rng.randint(100, 9999)} {rng.choice(STREETS)} {rng.choice(SUFFIXES)}, {region.city}, "
                    f"{region.state.upper()}",
            time_zone=region.time_zone, utility=region.utility_name, battery_nominal_energy_wh=energy_wh,
            max_charge_power_w=power_w, max_discharge_power_w=power_w,
            settings=InstallationSettings(
                backup_reserve_pct=_pick(rng, RESERVES_PCT), stormwatch_enabled=rng.random() < 0.9,
                priority=Priority.STORMWATCH_FIRST if rng.random() < 0.85 else Priority.VPP_FIRST),
        ))
        memberships.append((iid, GroupPath(f"utility.{region.utility}.{region.label}")))
        memberships.append((iid, GroupPath(f"region.us.{region.state}.{region.label}")))
        in_states = plan.program_states is None or region.state in plan.program_states
        if in_states and rng.random() < plan.program_share:
            enrollments.append((iid, plan.program, rng.choices(states, weights=plan.enrollment_mix)[0]))
        did = device_id(plan.prefix, index)
        devices.append(DeviceRecord(did, iid, f"{plan.prefix.upper()}-GW-{index:06d}", "gateway", "23.44.0",
                                    hash_credential(fleet_credential(plan.fleet_secret, did))))
    groups = _groups()
    return FleetData(customers=customers, installations=installations, groups=groups,
                     programs=[Group(plan.program, plan.program_name, plan.program)],
                     memberships=memberships, enrollments=enrollments, devices=devices)


def _groups() -> list[Group]:
    groups = {GroupPath("utility"): "Utilities", GroupPath("region"): "Regions",
              GroupPath("region.us"): "United States"}
    for r in REGIONS:
        groups[GroupPath(f"utility.{r.utility}")] = r.utility_name
        groups[GroupPath(f"utility.{r.utility}.{r.label}")] = r.name
        groups.setdefault(GroupPath(f"region.us.{r.state}"), r.state.upper())
        groups[GroupPath(f"region.us.{r.state}.{r.label}")] = r.name
    return [Group(p, n) for p, n in groups.items()]
