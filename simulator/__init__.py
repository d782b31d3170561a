"""Simulated fleets of home battery + solar installations."""
