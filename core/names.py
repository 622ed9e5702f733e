"""Names shared across FLR Studio, each defined once: benchmark kinds, signals and metrics, and
the column names of every DataFrame that `core` returns.

It imports nothing, on purpose: the command line's fast path (`flr evaluate --help`, the report
table) reads these without importing pandas or torch, and `ui/` labels its tables with them.
"""

# --- the words an on/off environment variable may hold (ours and those of the libraries we read:
# huggingface_hub takes 1/on/yes/true, `spaces` 1/t/true), compared lower-cased
TRUE_WORDS = ("1", "t", "true", "y", "yes", "on")
FALSE_WORDS = ("0", "f", "false", "n", "no", "off")

# --- score tables (`core.engine.results.ConversationScore.frame` / `.summary`)
CATEGORY = "category"
POLARITY = "polarity"
FOLLOWUP = "follow-up"
SCORE = "score"
MEAN_POSITIVE = "mean positive"
MEAN_NEGATIVE = "mean negative"
REWARD = "reward"
OVERALL = "overall"  # the category name used for the overall FLR in metric tables

# --- benchmark kinds, and the two sides of a pair
PAIRWISE, RATING, RANKING = "pairwise", "rating", "ranking"
KINDS = (PAIRWISE, RATING, RANKING)
CHOSEN, REJECTED = "chosen", "rejected"

# --- signals a report compares on the same rows, and their metrics
FLR = "flr"
LENGTH = "length"
POSITIVE_ONLY = "positive only"
NEGATIVE_ONLY = "negative only"
DIRECT = "direct"  # the FLR paper's Direct baseline: the reply's own mean token log-likelihood
BASELINES = (LENGTH, POSITIVE_ONLY, NEGATIVE_ONLY, DIRECT)
ACCURACY, PEARSON, SPEARMAN, KENDALL = "accuracy", "pearson", "spearman", "kendall"
CORRELATIONS = (PEARSON, SPEARMAN, KENDALL)
RANK_CORRELATIONS = (SPEARMAN, KENDALL)
METRICS_BY_KIND = {PAIRWISE: (ACCURACY,), RATING: CORRELATIONS, RANKING: RANK_CORRELATIONS}
HEADLINE = {PAIRWISE: ACCURACY, RATING: PEARSON, RANKING: SPEARMAN}

# --- columns of a report's tables (`EvaluationReport.metrics_frame` / `summary_frame` /
# `skipped_frame`, `flr compare`'s table) and of the app's tables and dashboards built from them
COL_BENCHMARK = "benchmark"
COL_KIND = "kind"
COL_SIGNAL = "signal"
COL_METRIC = "metric"
COL_VALUE = "value"
COL_CI_LOW, COL_CI_HIGH = "ci_low", "ci_high"
COL_P = "p_value"
COL_N = "n"
COL_REASON = "reason"
METRICS_COLUMNS = (COL_BENCHMARK, COL_KIND, CATEGORY, COL_SIGNAL, COL_METRIC, COL_VALUE,
                   COL_CI_LOW, COL_CI_HIGH, COL_P, COL_N)
BOOTSTRAP_SAMPLES = 1000  # percentile-bootstrap resamples per interval

# --- columns of `Benchmark.frame`, one row per conversation to judge
COL_ROW = "row"  # pair index (pairwise), row index (rating), response index (ranking)
COL_SIDE = "side"  # "chosen" / "rejected" for pairwise, "" otherwise
COL_SOURCE = "source"  # where the row comes from: "file.jsonl, line 12"
COL_CONVERSATION = "conversation"  # core.engine.conversation.Conversation, or None
COL_ERROR = "error"  # why the row cannot be judged, or None
COL_TRUTH = "truth"  # ground-truth score (rating), NaN otherwise
COL_MODEL = "model"  # the model that wrote the reply (ranking; rating files may have it)
COL_PROMPT = "prompt_id"  # which prompt the reply answers (ranking)
COL_PRECOMPUTED = "precomputed"  # {category: (positive values, negative values)} or None
COL_SUBSET = "subset"  # the row's subset (RewardBench's `subset` field), "" if none
FRAME_COLUMNS = (COL_ROW, COL_SIDE, COL_SOURCE, COL_CONVERSATION, COL_ERROR, COL_TRUTH,
                 COL_MODEL, COL_PROMPT, COL_PRECOMPUTED, COL_SUBSET)

# --- extra columns of a benchmark's per-row result table (`BenchmarkResult.rows`)
COL_SKIPPED = "skipped"
COL_VALUES = "values"  # {category: (positive values, negative values)}
COL_LENGTH = LENGTH

# --- columns of the mined-samples table (`core.mining.preferences.samples_frame`)
SAMPLE_PROMPT_ID = "prompt id"
SAMPLE_PROMPT = "prompt"
SAMPLE_INDEX = "sample"
SAMPLE_RESPONSE = "response"
SAMPLE_FLR = "FLR"  # a display header; the report's signal key is FLR = "flr"
SAMPLE_ROLE = "role"

# --- columns of the follow-up tables of `flr tune` / `flr followups report` (`core.tuning`)
WEIGHT = "weight"
IMPORTANCE = "importance"  # share of the summed absolute unit-scaled coefficients
DIRECTION = "direction"
ALONE = "alone"  # the follow-up's own figure (accuracy / AUC / correlation) as a reward by itself
AUC = "auc"
MAX_CORRELATION = "max |r| with another"
MOST_LIKE = "most like"
FLAGS = "flags"
