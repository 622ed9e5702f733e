"""DataFrame column names shared by `core` and `ui`, defined once."""

CATEGORY = "category"
POLARITY = "polarity"
FOLLOWUP = "follow-up"
SCORE = "score"
MEAN_POSITIVE = "mean positive"
MEAN_NEGATIVE = "mean negative"
REWARD = "reward"
OVERALL = "overall"  # the category name used for the overall FLR in metric tables
