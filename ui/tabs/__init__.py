"""The app's tabs, one module per tab (`score`, `batch`, `dashboards`, `mine`, `about`) and
each tab's parts beside it (`score_explain`: the Score tab's explanation view;
`dashboards_followups`: the Dashboards' follow-up report). `ui/gradio_app.py` puts them
together."""
