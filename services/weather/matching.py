"""Which installations an alert area covers, in two steps.

1. **Candidates from PostGIS by bounding box** (`location && envelope`): answered by the GiST
   index on `installations.location` alone, no exact geometry test in the database. A
   MultiPolygon uses one envelope per part, so two storm cells far apart do not pull in
   everything between them.
2. **Exact refinement in Python** (`refine`): Shapely 2's vectorized `intersects_xy` over the
   candidates' coordinates against the prepared area. It is a pure function of (area, ids,
   longitudes, latitudes) with no connection or state, so the candidates can be split into
   chunks and refined on as many workers (processes, Ray tasks) as wanted; `refine_chunks` is
   that split.

Guarantee: the result equals `ST_Intersects(location, area)` in PostGIS. Points on the boundary
count as inside in both (`intersects`, not `contains`), and `area` is the alert's WKT at full
precision. But PostGIS 3 decides point-in-polygon with its own code (a plain floating-point side
test), while GEOS uses robust orientation predicates: for a point within rounding error of an
edge the two can disagree (the tests found such a point). So `refine` sets apart the
candidates within `BOUNDARY_EPS_DEG` of the boundary (0.1 mm; in practice none, unless a site
lies exactly on an alert's edge) and `resolve_boundary` asks PostGIS about just those ids. The
integration tests and `bench/weather.py` check the equality on real and generated areas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from services.assets.model import InstallationId


# One bitmap index scan per envelope, OR-ed (a row in two envelopes comes back once).
def candidates_sql(envelope_count: int) -> str:
    boxes = " OR ".join(f"i.location && ST_MakeEnvelope(${4 * k + 1}, ${4 * k + 2}, ${4 * k + 3}, ${4 * k + 4}, 4326)"
                        for k in range(envelope_count))
    return ("SELECT i.installation_id, ST_X(i.location) AS longitude_deg, ST_Y(i.location) AS latitude_deg "
            f"FROM installations i WHERE {boxes}")


# The one-query reference the two steps must agree with. The area is an InitPlan (evaluated once):
# written inline, a prepared statement's generic plan would parse the WKT again for every row.
DIRECT_SQL = ("SELECT installation_id FROM installations "
              "WHERE ST_Intersects(location, (SELECT ST_GeomFromText($1, 4326)))")

# Installations this close to the area's boundary are decided by PostGIS (see above).
BOUNDARY_EPS_DEG = 1e-9
BOUNDARY_SQL = """
SELECT installation_id FROM installations
 WHERE installation_id = ANY($1::text[]) AND ST_Intersects(location, (SELECT ST_GeomFromText($2, 4326)))
"""

MAX_ENVELOPES = 64   # past this many parts, one envelope per part costs more scans than it saves


@dataclass(frozen=True)
class Candidates:
    """Installations in the area's envelopes: ids with their coordinates (degrees, WGS 84)."""

    ids: tuple[InstallationId, ...]
    longitudes_deg: NDArray[np.float64]
    latitudes_deg: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.ids)


def envelopes(area: BaseGeometry) -> list[tuple[float, float, float, float]]:
    parts = shapely.get_parts(area) if isinstance(area, shapely.MultiPolygon) else [area]
    if len(parts) > MAX_ENVELOPES:
        parts = [area]
    return [tuple(map(float, p.bounds)) for p in parts]  # type: ignore[misc]


async def candidates(con: asyncpg.Pool | asyncpg.Connection, area: BaseGeometry) -> Candidates:
    """Step 1: by the GiST index only."""
    boxes = envelopes(area)
    rows = await con.fetch(candidates_sql(len(boxes)), *(v for b in boxes for v in b))
    return Candidates(tuple(InstallationId(r[0]) for r in rows),
                      np.fromiter((r[1] for r in rows), np.float64, len(rows)),
                      np.fromiter((r[2] for r in rows), np.float64, len(rows)))


@dataclass(frozen=True)
class Refined:
    inside: tuple[InstallationId, ...]      # certainly in the area
    boundary: tuple[InstallationId, ...]    # within BOUNDARY_EPS_DEG of its boundary: PostGIS decides


def _segments(area: BaseGeometry) -> shapely.STRtree:
    rings = shapely.get_rings(shapely.get_parts(area))
    coords = [shapely.get_coordinates(r) for r in rings]
    pairs = np.concatenate([np.stack([c[:-1], c[1:]], axis=1) for c in coords])
    return shapely.STRtree(shapely.linestrings(pairs))


def refine(area: BaseGeometry, found: Candidates) -> Refined:
    """Step 2: the candidates inside the area or on its boundary (pure, stateless)."""
    if not len(found):
        return Refined((), ())
    shapely.prepare(area)
    inside = shapely.intersects_xy(area, found.longitudes_deg, found.latitudes_deg)
    near = np.zeros(len(found), bool)
    hits = _segments(area).query(shapely.points(found.longitudes_deg, found.latitudes_deg),
                                 predicate="dwithin", distance=BOUNDARY_EPS_DEG)[0]
    near[hits] = True
    return Refined(tuple(found.ids[i] for i in np.flatnonzero(inside & ~near)),
                   tuple(found.ids[i] for i in np.flatnonzero(near)))


def refine_wkt(area_wkt: str, ids: Sequence[str], longitudes_deg: Sequence[float],
               latitudes_deg: Sequence[float]) -> Refined:
    """`refine` on plain, picklable values: what a remote worker runs."""
    found = Candidates(tuple(InstallationId(i) for i in ids), np.asarray(longitudes_deg, np.float64),
                       np.asarray(latitudes_deg, np.float64))
    return refine(shapely.from_wkt(area_wkt), found)


async def resolve_boundary(con: asyncpg.Pool | asyncpg.Connection, area_wkt: str,
                           boundary: Sequence[InstallationId]) -> list[InstallationId]:
    """The boundary candidates PostGIS counts as intersecting (a primary-key lookup; usually none)."""
    if not boundary:
        return []
    return [InstallationId(r[0]) for r in await con.fetch(BOUNDARY_SQL, list(boundary), area_wkt)]


def refine_chunks(found: Candidates, chunk_size: int) -> list[Candidates]:
    """The candidates split for refinement on several workers (results concatenate in order)."""
    return [Candidates(found.ids[i:i + chunk_size], found.longitudes_deg[i:i + chunk_size],
                       found.latitudes_deg[i:i + chunk_size]) for i in range(0, len(found), chunk_size)]


async def settle(con: asyncpg.Pool | asyncpg.Connection, refined: Refined, area_wkt: str) -> list[InstallationId]:
    """The refined result as the affected set: the certain ones plus what PostGIS says of the boundary."""
    if not refined.boundary:
        return list(refined.inside)
    return [*refined.inside, *await resolve_boundary(con, area_wkt, refined.boundary)]


async def affected(con: asyncpg.Pool | asyncpg.Connection, area: BaseGeometry,
                   area_wkt: str | None = None) -> list[InstallationId]:
    """Both steps in this process (`area_wkt`: the area's full-precision WKT, if at hand)."""
    refined = refine(area, await candidates(con, area))
    return await settle(con, refined, area_wkt or shapely.to_wkt(area, rounding_precision=-1))


async def affected_direct(con: asyncpg.Pool | asyncpg.Connection, area_wkt: str) -> list[InstallationId]:
    """The reference: one `ST_Intersects` query."""
    return [InstallationId(r[0]) for r in await con.fetch(DIRECT_SQL, area_wkt)]
