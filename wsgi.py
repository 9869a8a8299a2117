"""Entry point for gunicorn (`gunicorn -c gunicorn.conf.py wsgi:app`) and `flask --app wsgi`."""

import sys

from dotenv import load_dotenv

from webapp import create_app
from webapp.config import ConfigError

load_dotenv()  # an optional .env file; variables already set win
try:
    app = create_app()
except ConfigError as exc:  # one line naming the setting, not a traceback
    print(f"Configuration error: {exc}", file=sys.stderr)
    raise SystemExit(3) from None  # gunicorn's "worker failed to boot": it stops, not respawns
