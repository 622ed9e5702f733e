"""The app started the way a ZeroGPU Space starts it, with the stand-in `spaces` (tests/stubs).

    SPACES_ZERO_GPU=true SPACE_ID=me/flr GRADIO_SERVER_PORT=7861 python -m tests.ui.zero_gpu_app

Model work goes through `ui.gpu`'s `spaces.GPU` functions, so every call pickles its arguments
and result and runs in a forked child. The scorer is `tests.fakes.FakeScorer` and the mining
policy `ScriptedPolicy`, so no weights are loaded; `FLR_STUB_GPU_LOG` collects one line per GPU
call. Used by tests/ui/test_zero_gpu.py and the browser check; it listens on 127.0.0.1 only.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from pathlib import Path

STUBS = Path(__file__).resolve().parents[1] / "stubs"


def main() -> None:
    sys.path.insert(0, str(STUBS))  # before ui.gpu is imported: it imports `spaces` then
    import core.mining.policy
    from tests.fakes import FakeScorer
    from tests.mining.test_mining import ScriptedPolicy
    from ui.gradio_app import build_app, launch_options
    from ui.settings import AppSettings

    # the forked GPU worker inherits this: the default policy factory finds no model to load
    core.mining.policy.load_policy = lambda config: ScriptedPolicy()
    settings = replace(AppSettings.from_env(), server_name="127.0.0.1")
    demo = build_app(settings, scorer_factory=FakeScorer)
    logging.basicConfig(level=logging.INFO)
    demo.launch(**launch_options(settings, quiet=True))


if __name__ == "__main__":
    main()
