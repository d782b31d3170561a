"""Paths of the real public data in ../shared/data (see SOURCES.md there)."""

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
HOUSEHOLD_CSV = SHARED_DATA / "household_load_pv" / "ausgrid_solarhome_customer12_2011-2012_halfhourly.csv"
POWERWALL = SHARED_DATA / "powerwall"
