"""Lesson video generation tracker.

`create_app` imports Flask only when called, so that `import webapp.render`
(the renderer, which workers and the command line use on their own) never
pulls in Flask.
"""


def create_app(config: dict | None = None):
    """Build the Flask app; `config` overrides settings from the environment."""
    from .app import build_app

    return build_app(config)
