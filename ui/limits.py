"""Per-request input caps of the app: smaller than the command line's, so that one visitor's
paste or upload cannot hold the only model slot (or the server's memory) for minutes.

Every event handler runs under `APP_LIMITS` (see `ui.errors.user_errors`); `FLR_MAX_*`
variables set by whoever hosts the app still raise or lower each one.
"""

from __future__ import annotations

from core.limits import InputLimits

APP_LIMITS = InputLimits(
    turn_chars=50_000,  # one utterance (~12k tokens; more than the embedded model's context)
    conversation_chars=200_000,  # a whole pasted conversation
    turns=2_000,  # utterances of one conversation; the oldest are cut to fit the model anyway
    records=50_000,  # rows of one uploaded file
    followups=500,  # follow-ups of one set
    followup_chars=1_000,  # one follow-up
    file_mb=64,  # one uploaded file once decompressed (the upload limit is 50 MB compressed)
    followup_set_chars=40_000,  # all follow-ups of one set (the default set: 120, 4,180 characters)
    context_chars=32,  # one conversation, per token of the model's context (4 contexts of 8)
    pairs=1_000,  # conversations x follow-ups of a Score or Compare request (2 x 500)
)


def app_limits() -> InputLimits:
    """`APP_LIMITS` with the host's `FLR_MAX_*` variables applied (read per request)."""
    return InputLimits.from_env(base=APP_LIMITS)
