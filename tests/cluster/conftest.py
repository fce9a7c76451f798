"""A Ray cluster of two nodes on this machine (loopback only, one CPU and a small object store each), started
once for the cluster tests and shut down after them, with every process it started."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from streamact.cluster import PROXY_CALLBACK, PROXY_CALLBACK_ENV

# Ray resolves 127.0.0.1 in an address to this machine's network address unless clusters are "not enabled" (Ray's
# setting for laptops); with it every node, the drivers and their connections stay on loopback. Read when Ray is
# first imported, which no test module does before this file runs.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
# Serve's proxies close the streams of a replica that died with a close code (`streamact.cluster.serve`); nodes read
# this when they start, as `ray start` on a real cluster's machines would.
os.environ[PROXY_CALLBACK_ENV] = PROXY_CALLBACK

NODE = {"num_cpus": 1, "object_store_memory": 80 * 1024**2, "node_ip_address": "127.0.0.1"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook, which reads the group to name the test
def pytest_collection_modifyitems(items):
    """Every cluster test on one xdist worker (`make test` runs --dist loadgroup): one Ray cluster, not one each."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.xdist_group("ray_cluster"))


@pytest.fixture(scope="session")
def ray_cluster():
    """The address of a two-node Ray cluster (tests connect to it as drivers with `streamact.cluster.connect`)."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    try:
        cluster.add_node(**NODE)
        cluster.wait_for_nodes()
        yield cluster.address
    finally:
        ray.shutdown()
        cluster.shutdown()
