"""FLR Studio's engine: Follow-up Likelihood as Reward, with no UI dependencies.

`core` knows nothing about Gradio or plotly; `ui/` imports from here, never the reverse.
Heavy modules (torch, transformers) are imported by the modules that need them, so importing
`core` itself stays cheap.
"""
