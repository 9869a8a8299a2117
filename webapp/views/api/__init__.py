"""The JSON API: the original two endpoints (their exact shapes) and the additive ones.

Described by the schemas in views/schemas/ through flask-smorest: the schema that validates a
request or serialises a response is the one /openapi.json shows. One blueprint (blueprint.py,
endpoint names `api.*`); its endpoints live in modules by concern. Importing this package
registers them all, in the order /openapi.json lists their paths: the order of the modules
below (alphabetical, which ruff's import sorting keeps).
"""

from . import generation, jobs, packages, renders, tokens
from .blueprint import bp

__all__ = ["bp", "generation", "jobs", "packages", "renders", "tokens"]
