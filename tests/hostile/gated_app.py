"""The app as `app.py` starts it (settings from the environment), with a scorer that waits.

    SPACE_ID=me/flr FLR_TEST_GATE=/tmp/open GRADIO_SERVER_PORT=7861 python -m tests.hostile.gated_app

The scorer is `tests.fakes.FakeScorer`, but loading it waits until the file `FLR_TEST_GATE`
exists (at most 120 s): the first model request holds the model slot and every later one waits in
gradio's queue, so a test can fill the queue deterministically and then let it drain. Used by
tests/hostile/test_app_limits.py; it listens on 127.0.0.1 only.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from pathlib import Path

GATE_SECONDS = 120  # the longest a request waits for the gate (a test that forgot to open it)


def main() -> None:
    from tests.fakes import FakeScorer
    from ui.gradio_app import build_app, launch_options
    from ui.settings import AppSettings

    gate = Path(os.environ["FLR_TEST_GATE"])

    def gated(config):
        deadline = time.monotonic() + GATE_SECONDS
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return FakeScorer(config)

    settings = replace(AppSettings.from_env(), server_name="127.0.0.1")
    demo = build_app(settings, scorer_factory=gated)
    logging.basicConfig(level=logging.INFO)
    demo.launch(**launch_options(settings, quiet=True))


if __name__ == "__main__":
    main()
