"""One local Ray instance (2 CPUs, no dashboard) for every test in this folder; shut down after."""

from __future__ import annotations

from typing import Any, Iterator

import pytest


@pytest.fixture(scope="session")
def ray_instance() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-ray.txt")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
