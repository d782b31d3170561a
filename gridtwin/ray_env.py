"""The environment every Ray process of the project runs with (set before `ray` is imported)."""

from __future__ import annotations

import os


def ray_auth_env() -> dict[str, str]:
    """Environment for every process of a Ray cluster the project starts on this machine.

    Ray 2.60 turns token authentication on for clusters started without RAY_AUTH_MODE and keeps
    the token in ~/.ray/auth_token, one file for every cluster on the machine: a second cluster
    (a test session beside `make run`) rewrites it and locks the first one's processes out, and a
    process that imported ray before the variable was set disagrees with its own cluster. The
    project's clusters are single-machine, so they run with authentication off, consistently; a
    multi-node deployment (KubeRay) configures token auth for the whole cluster instead."""
    return {"RAY_AUTH_MODE": "disabled"}


# Ray keeps the events of the last 100,000 tasks in the GCS by default (hundreds of MiB); the
# hot actor calls report none (TwinShardActor), and the rest need far fewer for debugging.
RAY_HEAD_ENV = {"RAY_task_events_max_num_task_in_gcs": "10000"}


def configure_ray_auth() -> None:
    """Sets this process's (and its Ray children's) authentication mode; see `ray_auth_env`."""
    os.environ.update(ray_auth_env())
