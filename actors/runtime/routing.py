"""Installation id → shard, by the same hash Kafka's default partitioner applies to the record key.

`shard_hash(id)` is murmur2 of the UTF-8 id, masked to 31 bits, exactly what aiokafka's (and the
Java client's) DefaultPartitioner computes before `% partitions`. The shard is `shard_hash % n`,
so when the shard count divides the partition count every partition feeds exactly one shard
(partition p → shard p % n), and a consumer's batch touches as few shards as possible.
The hash is stored with each snapshot so a shard finds its twins with `shard_hash % n = index`.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2

_CACHE: dict[str, int] = {}
_CACHE_LIMIT = 1_000_000


def shard_hash(installation_id: str) -> int:
    found = _CACHE.get(installation_id)
    if found is None:
        found = murmur2(installation_id.encode()) & 0x7FFFFFFF
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE[installation_id] = found
    return found


def shard_of(installation_id: str, shard_count: int) -> int:
    return shard_hash(installation_id) % shard_count


def shard_name(epoch: int, index: int) -> str:
    return f"twin-shard-e{epoch}-{index}"
