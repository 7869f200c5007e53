"""The app's tabs, one module each: Label, Search, Annotate, Model, Review.

Each module has ``layout(page)``, which places its components inside its ``gr.Tab`` and
returns them, and ``wire(page, tab, ...)``, which connects them to :mod:`va_ui.handlers`.
What a tab needs from another (the Labels table, the Model tab's outputs) is passed to
its ``wire`` explicitly; :func:`va_ui.app.build_app` composes them.
"""
