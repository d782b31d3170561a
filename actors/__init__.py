"""The twin runtime on Ray and the pure twin logic. `handoff` is where ingest delivers committed batches."""
