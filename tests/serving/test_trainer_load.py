"""The trainers' default clients against `flr serve` in its own process (defaults, fresh HOME,
loopback, the embedded model), at a size CI can afford: benchmarks/serve_trainers.py's run with
an OpenRLHF burst larger than one batch. Every reward comes back and equals `flr score`; the
OpenRLHF answers carry each category. The full size (1024 OpenRLHF requests at once) is
`.venv/bin/python benchmarks/serve_trainers.py`."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.serving.verl_rows import ROOT


def bench():
    spec = importlib.util.spec_from_file_location("serve_trainers", ROOT / "benchmarks" / "serve_trainers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_openrlhf_client_keeps_openrlhfs_numbers():
    """openrlhf/utils/agent.py `_post_request(url, data, try_max_times=5)`, `ClientTimeout(total=180)`,
    `await asyncio.sleep(1)` between tries (OpenRLHF commit 3c3be6234e0cb353e76bb8019947db9dfe99fca7)."""
    module = bench()
    assert (module.OPENRLHF_TRIES, module.OPENRLHF_TIMEOUT_S, module.OPENRLHF_PAUSE_S) == (5, 180.0, 1.0)


@pytest.mark.embedded
def test_openrlhf_verl_and_trl_clients_get_every_reward_equal_to_flr_score(tmp_path):
    module = bench()
    # ~95 s on a shared 2-core CPU, ~30 s of it the embedded model's first-use conversion that a
    # fresh HOME pays for (in flr score, then reused by flr serve); 72 > the default --max-batch 64.
    runs, problems = module.run_all(openrlhf=72, verl=8, trl_processes=2, trl_steps=1, trl_group=4,
                                    distinct=4, workdir=tmp_path)
    assert problems == []
    assert [r.name for r in runs] == ["OpenRLHF", "verl", "TRL"]
    assert [len(r.rewards) for r in runs] == [72, 8, 8]
    assert all(r is not None for run in runs for r in run.rewards)
    assert set(runs[0].categories[0]) == set(module.SMALL_FOLLOWUPS)
