"""FLR Studio web app: `python app.py` (or a Hugging Face Space running this file).

Settings come from the environment (FLR_MODEL, FLR_ALLOWED_MODELS, ..., see README); building
the app loads no model and touches no network.
"""

import logging

from ui.gradio_app import build_app, launch_options
from ui.settings import AppSettings

settings = AppSettings.from_env()
demo = build_app(settings)

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own startup requests
    demo.launch(**launch_options(settings))
