"""The twin runtime on Ray: shard actors, routing, persistence, recovery, the cluster singleton."""
