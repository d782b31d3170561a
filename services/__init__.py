"""Domain services, one folder per bounded context."""
