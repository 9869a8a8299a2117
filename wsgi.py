"""Entry point for gunicorn (`gunicorn -c gunicorn.conf.py wsgi:app`) and `flask --app wsgi`."""

from webapp import create_app

app = create_app()
