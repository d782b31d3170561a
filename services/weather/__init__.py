"""Weather: provider adapters and alert normalization for StormWatch (see the weather issue)."""
