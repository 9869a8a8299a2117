"""Entry point for gunicorn (`gunicorn -c gunicorn.conf.py wsgi:app`) and `flask --app wsgi`."""

from dotenv import load_dotenv

from webapp import create_app

load_dotenv()  # an optional .env file; variables already set win
app = create_app()
