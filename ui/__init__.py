"""FLR Studio's Gradio app: tabs that wire `core` results to components and plotly figures.

`ui/` imports `core/`, never the reverse. Layout per screen: `core` returns dataclasses and
DataFrames, `ui/plots.py` turns DataFrames into figures, and each tab in `ui/tabs/`
only wires components to handlers. `ui/gradio_app.py` assembles the tabs into one `gr.Blocks`.
"""
