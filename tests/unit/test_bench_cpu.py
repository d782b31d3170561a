"""The telemetry benchmark's CPU accounting (bench/cpu.py): pure parts."""

import os

import pytest

from bench.cpu import StageCost, cpu_s, parse_stat_cpu_s, per_sample_rows, postgres_title_database

TICKS = os.sysconf("SC_CLK_TCK")


def test_stat_fields_are_counted_from_the_last_parenthesis():
    # a command name with spaces and parentheses must not shift utime (14) and stime (15)
    stat = f"42 (evil) name (x)) S 1 42 42 0 -1 4194560 100 0 0 0 {3 * TICKS} {TICKS} 0 0 20 0 1 0"
    assert parse_stat_cpu_s(stat) == pytest.approx(4.0)
    assert cpu_s(os.getpid()) is not None and cpu_s(2**22 + 12345) is None


def test_backend_titles_name_their_database():
    title = "postgres: 15/main: gridtwin gridtwin_bench 127.0.0.1(5432) idle"
    assert postgres_title_database(title) == "gridtwin_bench"
    assert postgres_title_database("postgres: 15/main: walwriter") is None
    assert postgres_title_database("python -m bench") is None


def test_per_sample_rows_keep_shared_stages_out_of_the_total_and_subtract_idle():
    costs = [StageCost("gateway", 2.0, 1, False, idle_cores=0.1), StageCost("ingest", 1.0, 1, False),
             StageCost("ray system", 5.0, 4, True), StageCost("simulator", 3.0, 1, False)]
    rows = per_sample_rows(costs, samples=100_000, elapsed_s=10.0)
    assert rows[0] == ("gateway", "20.0", "10.0", "0.20", "0.10", "1")
    assert rows[2][0] == "ray system (shared)"
    assert rows[-1] == ("platform total", "30.0", "20.0", "0.30", "0.10", "2")   # gateway + ingest only
