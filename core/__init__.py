"""FLR Studio's engine: Follow-up Likelihood as Reward, with no UI dependencies.

The public Python API, for notebooks and scripts:

    from core import ScoringConfig, load_scorer, parse_conversation, default_followups
    scorer = load_scorer(ScoringConfig(model="embedded"))
    result = scorer.score(parse_conversation(["What is 2+2?", "4."]), default_followups())
    print(result.flr, result.category_frame())

Evaluate with `detect_benchmarks` + `run_evaluation`, mine preference data with `load_prompts`,
`policy_for`, `mine` and `export_preferences`; use FLR as an RL reward with `FLRReward`
(a TRL reward function) or `flr serve`. The sub-packages are the subsystems:
`core.engine` (scoring), `core.evaluation` (benchmark files, metrics, reports),
`core.mining` (sampling and preference data), `core.serving` (the reward server), `core.cli` (the `flr` command).

`core` knows nothing about Gradio or plotly; `ui/` imports from here, never the reverse.
The names below are loaded on first use, so `import core` stays cheap (no torch, no pandas):
the command line's fast path relies on that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "FLRError", "ScoringConfig", "load_scorer", "Conversation", "parse_conversation",
    "FollowupSet", "default_followups", "load_followups", "ConversationScore",
    "detect_benchmarks", "run_evaluation", "EvaluationOptions", "EvaluationReport", "load_elo",
    "MiningConfig", "load_prompts", "policy_for", "mine", "ExportConfig", "export_preferences",
    "FLRReward",
]

if TYPE_CHECKING:
    from core.engine.config import ScoringConfig
    from core.engine.conversation import Conversation, parse_conversation
    from core.engine.followups import FollowupSet, default_followups, load_followups
    from core.engine.results import ConversationScore
    from core.engine.scorer import load_scorer
    from core.errors import FLRError
    from core.evaluation.detect import detect_benchmarks
    from core.evaluation.elo import load_elo
    from core.evaluation.report import EvaluationReport
    from core.evaluation.runner import EvaluationOptions, run_evaluation
    from core.mining.mining import MiningConfig, mine
    from core.mining.policy import policy_for
    from core.mining.preferences import ExportConfig, export_preferences
    from core.mining.prompts import load_prompts
    from core.serving.reward import FLRReward


def __getattr__(name: str) -> Any:  # PEP 562: import the home module of a public name on first use
    if name == "FLRError":
        from core.errors import FLRError as value
    elif name == "ScoringConfig":
        from core.engine.config import ScoringConfig as value
    elif name == "load_scorer":
        from core.engine.scorer import load_scorer as value
    elif name == "Conversation":
        from core.engine.conversation import Conversation as value
    elif name == "parse_conversation":
        from core.engine.conversation import parse_conversation as value
    elif name == "FollowupSet":
        from core.engine.followups import FollowupSet as value
    elif name == "default_followups":
        from core.engine.followups import default_followups as value
    elif name == "load_followups":
        from core.engine.followups import load_followups as value
    elif name == "ConversationScore":
        from core.engine.results import ConversationScore as value
    elif name == "detect_benchmarks":
        from core.evaluation.detect import detect_benchmarks as value
    elif name == "run_evaluation":
        from core.evaluation.runner import run_evaluation as value
    elif name == "EvaluationOptions":
        from core.evaluation.runner import EvaluationOptions as value
    elif name == "EvaluationReport":
        from core.evaluation.report import EvaluationReport as value
    elif name == "load_elo":
        from core.evaluation.elo import load_elo as value
    elif name == "MiningConfig":
        from core.mining.mining import MiningConfig as value
    elif name == "load_prompts":
        from core.mining.prompts import load_prompts as value
    elif name == "policy_for":
        from core.mining.policy import policy_for as value
    elif name == "mine":
        from core.mining.mining import mine as value
    elif name == "ExportConfig":
        from core.mining.preferences import ExportConfig as value
    elif name == "export_preferences":
        from core.mining.preferences import export_preferences as value
    elif name == "FLRReward":
        from core.serving.reward import FLRReward as value
    else:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    globals()[name] = value
    return value
