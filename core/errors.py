"""Exceptions that callers can act on.

Every error raised for bad caller input derives from `FLRError` and from `ValueError`, and its
message names where the problem is (file, line or row, field) and what to do about it. The UI
turns these into `gr.Error`, the CLI into a one-line message and a non-zero exit.
"""


class FLRError(Exception):
    """Base class of every error FLR Studio raises on purpose."""


class InputError(FLRError, ValueError):
    """Caller input that cannot be used as given."""


class ConversationError(InputError):
    """A conversation that cannot be parsed or scored."""


class TemplateRefusalError(ConversationError):
    """A conversation the scoring model's chat template refuses to render (a system message for
    a template without a system role, roles that do not alternate)."""


class FollowupSetError(InputError):
    """A follow-up set file or mapping that is malformed."""


class BenchmarkFormatError(InputError):
    """A benchmark, rating or ranking file that cannot be read."""


class ConfigError(InputError):
    """A scoring setting with an unknown or inconsistent value."""


class ModelLoadError(FLRError, RuntimeError):
    """A model or tokenizer that could not be loaded."""


class ClusterError(FLRError, RuntimeError):
    """A Ray cluster that cannot be used: Ray missing, no cluster at the address, every worker lost."""


class TuningError(InputError):
    """Labelled data that cannot be used to tune follow-up weights (`flr tune`)."""


class StoppedError(FLRError):
    """Model work stopped because the caller asked (a cancelled app job, a closed request)."""
