"""About tab: what FLR is, how the numbers are computed, how to reproduce the paper, citation."""

import gradio as gr

from core.engine.followups import PAPER_CATEGORIES

BIBTEX = """@inproceedings{zhang2025flr,
  title     = {Aligning Language Models Using Follow-up Likelihood as Reward Signal},
  author    = {Zhang, Chen and Chong, Dading and Jiang, Feng and Tang, Chengguang and
               Gao, Anningzhe and Tang, Guohua and Li, Haizhou},
  booktitle = {Proceedings of the AAAI Conference on Artificial Intelligence},
  year      = {2025},
  eprint    = {2409.13948},
  archivePrefix = {arXiv},
  url       = {https://arxiv.org/abs/2409.13948}
}"""

ABOUT = f"""
## What FLR is

**Follow-up Likelihood as Reward** (FLR) judges a chatbot reply by how the *user* is likely to
answer it. After a good reply people tend to say "Thanks, that's exactly what I needed"; after a
bad one, "That's not what I asked". A language model reads the conversation and the reply, and
we measure how likely it finds a set of such **positive** and **negative** follow-up messages.
No human labels and no trained reward model are needed: only a causal language model and a
small set of follow-ups, grouped into categories ({", ".join(PAPER_CATEGORIES)} in the default
set).

## How the score is computed

1. **Base mode.** The conversation is rendered with the model's chat template, and each
   follow-up is appended as the *next user turn*. Its score is the log-likelihood of the
   follow-up's own tokens (role headers and end-of-turn markers excluded) given everything
   before it. Models without a chat template get plain `User:` / `Assistant:` turns.
2. **Feedback-tuned mode.** For a scorer fine-tuned on natural-language feedback (the paper's
   feedback-tuned FLR), the roles are swapped: a fixed instruction opens the conversation, the
   user's question becomes an assistant turn, the judged reply a user turn, and the follow-up is
   scored as the assistant's next turn. As in the paper's scripts, only the last exchange is kept.
3. **Aggregation over tokens.** *mean*: average log-probability per token (length-fair);
   *sum*: total log-probability; *paper*: reproduces the released scripts exactly (the raw
   logits at the follow-up's token ids, averaged; not a log-likelihood), for numbers
   comparable with the paper's tables.
4. **Category reward** = mean score of the category's positive follow-ups − mean score of its
   negative follow-ups. It is positive when praise is more likely than complaint.
5. **Overall FLR** = the mean of the selected categories' rewards.

Scores are only comparable between replies scored with the same model, mode, aggregation and
follow-up set; the batch cache keys every score by all four.

## Using this app

- **Score**: paste a conversation (or click an example), pick categories and press *Score*.
  The follow-up set can be edited or uploaded in the accordion below the conversation.
  *Side by side* scores two candidate replies to the same conversation.
- **Batch evaluation**: upload benchmark files (the paper's accept/reject layout, HH-RLHF,
  prompt/chosen/rejected, LLMBar, rating or ranking sets; JSON, JSONL, CSV, Parquet), check what
  was detected, run, and download the scored rows and the report. Scores are cached, so a
  cancelled or repeated run does not score anything twice.
- **Dashboards**: plots of this session's results and of uploaded `REPORT.json` files.
- **Mine preferences**: sample several replies per prompt, score them with FLR, and export the
  best and worst as preference data (DPO, KTO, SFT) for LLaMA-Factory.

Long conversations are cut from the left (oldest turns first) to fit the model's context; the
result says so when that happens.

## Reproducing the paper

The paper's released evaluation files (accept/reject pairs per category, rating sets, model
outputs for ranking) can be evaluated directly: files with precomputed `positive` / `negative`
values are evaluated without a model; the others are scored. From the command line:

```
python -m core evaluate path/to/files/*.jsonl --aggregation paper --report REPORT.json
```

then upload `REPORT.json` in the Dashboards tab. The model ranking compares against the paper's
LMSYS Arena ELO table of 30 models (2024-06-07), which is built in.

## Citation

```bibtex
{BIBTEX}
```

Paper: [arXiv:2409.13948](https://arxiv.org/abs/2409.13948) · Chen Zhang, Dading Chong,
Feng Jiang, Chengguang Tang, Anningzhe Gao, Guohua Tang, Haizhou Li · AAAI 2025.
"""


def build(ctx: object = None) -> None:
    gr.Markdown(ABOUT, elem_id="about")
