"""After-event energy: the clipped, sign-split trapezoid, and compensation in cents."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from services.control.vpp.report import compensation, integrate_window, reports_from_rows


def _fine(ts: list[float], p: list[float], a: float, b: float, gap: float, n: int = 400_001) -> tuple[float, float]:
    """Brute force: sample the linear interpolation densely inside the covered segments."""
    t = np.linspace(a, b, n)
    v = np.interp(t, ts, p)
    seg = np.searchsorted(ts, t, side="right") - 1
    ok = (seg >= 0) & (seg < len(ts) - 1)
    ok[ok] &= (np.asarray(ts)[seg[ok] + 1] - np.asarray(ts)[seg[ok]]) <= gap
    dt_h = (b - a) / (n - 1) / 3600
    pos = np.where(ok, np.maximum(v, 0), 0.0)
    neg = np.where(ok, np.maximum(-v, 0), 0.0)
    return float(np.trapezoid(pos) * dt_h), float(np.trapezoid(neg) * dt_h)


def test_constant_discharge_for_an_hour() -> None:
    e = integrate_window(np.array([0.0, 1800, 3600]), np.array([3000.0, 3000, 3000]), 0, 3600, 1800)
    assert e.discharged_wh == pytest.approx(3000) and e.charged_wh == 0
    assert e.samples == 3 and e.covered_s == 3600


def test_segment_straddling_zero_is_split() -> None:
    # -1000 W → +3000 W over 400 s: zero at 100 s; charge 1000*100/2 Ws, discharge 3000*300/2 Ws.
    e = integrate_window(np.array([0.0, 400]), np.array([-1000.0, 3000]), 0, 400, 900)
    assert e.charged_wh == pytest.approx(1000 * 100 / 2 / 3600)
    assert e.discharged_wh == pytest.approx(3000 * 300 / 2 / 3600)


def test_window_edges_are_interpolated() -> None:
    # Samples at 0 and 100 s, 0 → 1000 W; window [50, 75]: power 500 → 750 W.
    e = integrate_window(np.array([0.0, 100]), np.array([0.0, 1000]), 50, 75, 900)
    assert e.discharged_wh == pytest.approx((500 + 750) / 2 * 25 / 3600)
    assert e.samples == 0 and e.covered_s == 25
    # Edge inside a straddling segment: -1000 → 1000 over [0, 100], window [25, 100].
    e = integrate_window(np.array([0.0, 100]), np.array([-1000.0, 1000]), 25, 100, 900)
    assert e.charged_wh == pytest.approx(500 * 25 / 2 / 3600)
    assert e.discharged_wh == pytest.approx(1000 * 50 / 2 / 3600)


def test_gaps_are_not_integrated() -> None:
    ts = np.array([0.0, 60, 1_000, 1_060])
    e = integrate_window(ts, np.array([1000.0, 1000, 1000, 1000]), 0, 1_060, 300)
    assert e.discharged_wh == pytest.approx(1000 * 120 / 3600)
    assert e.covered_s == 120


def test_random_signals_match_brute_force() -> None:
    rng = np.random.default_rng(3)
    for _ in range(5):
        ts = np.cumsum(rng.uniform(1, 120, 60))
        p = rng.uniform(-4000, 4000, 60)
        a, b = float(ts[3] + 7.3), float(ts[-4] - 11.1)
        e = integrate_window(ts, p, a, b, 100)
        pos, neg = _fine(list(ts), list(p), a, b, 100)
        assert e.discharged_wh == pytest.approx(pos, rel=2e-3, abs=0.05)
        assert e.charged_wh == pytest.approx(neg, rel=2e-3, abs=0.05)


def test_rows_per_device_are_summed_per_installation() -> None:
    rows = [("h1", "d1", 0, 1000.0), ("h1", "d1", 3_600_000_000, 1000.0),
            ("h1", "d2", 0, 500.0), ("h1", "d2", 1_800_000_000, 500.0),
            ("h2", "d3", 0, -100.0), ("h2", "d3", 3_600_000_000, -100.0)]
    reports = reports_from_rows(rows, ["h1", "h2", "h3"], 0, 3600, 3600)
    assert reports["h1"].discharged_wh == pytest.approx(1000 + 250) and reports["h1"].coverage == 1
    assert reports["h2"].charged_wh == pytest.approx(100) and reports["h2"].discharged_wh == 0
    assert reports["h3"].samples == 0 and reports["h3"].coverage == 0


def test_compensation_rounds_half_up_to_cents() -> None:
    assert compensation(3_100.0, 2) == Decimal("6.20")
    assert compensation(2.5, 2) == Decimal("0.01")        # 0.005 → 0.01
    assert compensation(2.4999, 2) == Decimal("0.00")
    assert compensation(1234.5, "0.15") == Decimal("0.19")  # 0.185175
    assert compensation(1000, 0.1) == Decimal("0.10")
    for bad in ((-1.0, 2), (float("nan"), 2), (1.0, -2)):
        with pytest.raises(ValueError):
            compensation(*bad)
