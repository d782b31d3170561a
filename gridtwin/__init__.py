"""gridtwin: telemetry and control for fleets of home batteries and solar."""
