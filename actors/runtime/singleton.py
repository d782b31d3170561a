"""The cluster singleton facility: one named actor for the whole Ray cluster, recreated if it dies.

`ClusterSingleton(cls, name, namespace, *args)` resolves the detached actor `name`, creating it
when it does not exist (`get_if_exists`, so racing processes agree on one). Ray restarts it after
its process dies (`max_restarts=-1`); if it is gone for good (killed without restart, or its
node lost), the next `call` creates it again. Calls during a restart are retried with backoff
until `timeout_s`. The singleton must rebuild its state in its constructor (from storage), as
Ray gives a restarted actor a fresh instance. The StormWatch weather poller is meant to run
as one of these.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ray
from ray.actor import ActorClass, ActorHandle
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError


def get_or_create(cls: ActorClass, name: str, namespace: str, *args: Any) -> ActorHandle:
    return cls.options(  # type: ignore[no-any-return, return-value]
        name=name, namespace=namespace, lifetime="detached", get_if_exists=True,
        max_restarts=-1, max_task_retries=0, num_cpus=0,
    ).remote(*args)


class ClusterSingleton:
    def __init__(self, cls: ActorClass, name: str, namespace: str, *args: Any) -> None:
        self._cls, self.name, self.namespace, self._args = cls, name, namespace, args
        self._handle: ActorHandle | None = None

    @property
    def handle(self) -> ActorHandle:
        if self._handle is None:
            self._handle = get_or_create(self._cls, self.name, self.namespace, *self._args)
        return self._handle

    async def call(self, method: str, *args: Any, timeout_s: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout_s
        delay_s = 0.05
        while True:
            try:
                return await getattr(self.handle, method).remote(*args)
            except ActorDiedError:
                self._handle = None          # gone for good: recreate on the next attempt
            except (ActorUnavailableError, RayActorError):
                pass                          # restarting: try the same handle again
            if time.monotonic() + delay_s > deadline:
                raise TimeoutError(f"singleton {self.name!r} did not answer {method} within {timeout_s:.0f} s")
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 1.0)

    def kill(self, *, restart: bool) -> None:
        """For tests and operators: ends the singleton's process (Ray restarts it when `restart`)."""
        ray.kill(self.handle, no_restart=not restart)
        if not restart:
            self._handle = None
