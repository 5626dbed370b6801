"""The web layer: the only place that imports Starlette and Jinja2."""
