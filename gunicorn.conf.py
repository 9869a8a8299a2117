"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`. Environment overrides shown inline."""

import logging
import os
from urllib.parse import quote

from gunicorn.glogging import Logger

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gevent: each request is a greenlet, so hundreds of open event streams (server-sent events)
# wait on Redis without holding a thread each, while status polls and downloads go on.
# psycopg 3 and redis-py cooperate with gevent's patched sockets.
worker_class = os.environ.get("WEB_WORKER_CLASS", "gevent")
worker_connections = int(os.environ.get("WEB_CONNECTIONS", "1000"))
threads = int(os.environ.get("WEB_THREADS", "4"))  # for WEB_WORKER_CLASS=gthread
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
accesslog = "-"
# The path without its query string, and no Referer: a query string can hold a secret (a
# set-password link's token), as the app's own request log lines know.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s"'
errorlog = "-"
# The app's own lines (one key=value line per request, render state changes) at INFO: without
# this the web process's root logger kept only warnings.
logging.basicConfig(
    level=os.environ.get("LOG_LEVEL", "INFO").upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
)
# Importing Flask-Migrate loads alembic, which announces each of its plugins at INFO; the web
# process migrates nothing (`flask db upgrade` does, with its own logging).
logging.getLogger("alembic").setLevel(logging.WARNING)


class AccessLogger(Logger):
    """gunicorn's access log with the path percent-encoded again: gunicorn writes it decoded, so
    a '%0A' in it started a second line of the sender's choosing. Quotes in the User-Agent are
    escaped, so it cannot end its field either."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        path = atoms.get("U") or ""
        atoms["U"] = quote(path.encode("latin-1", "replace"), safe="/:@!$&'()*+,;=-._~")  # WSGI: latin-1
        agent = str(atoms.get("a") or "-")
        atoms["a"] = agent.replace("\\", "\\\\").replace('"', '\\"')
        return atoms


logger_class = AccessLogger
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# No control socket (gunicorn 27's `gunicornc`, unused here): by default it is one per user,
# ~/.gunicorn/gunicorn.ctl, taken over by every other gunicorn of that user and deleted by the
# first to stop.
control_socket_disable = True


def post_request(worker, req, environ, resp):
    """After each response, let the other connections of this worker have a turn. gevent
    switches only when a socket would block: a keep-alive client whose next request is already
    waiting would be served again and again while others wait (p99 of status polls at 16
    connections: 300-1,300 ms without this yield, about 70 ms with it; see bench/README.md)."""
    if worker_class == "gevent":
        import gevent

        gevent.sleep(0)


def worker_exit(server, worker):
    """Add the status answers this worker counted but not yet added to the shared metrics."""
    app = getattr(worker, "wsgi", None)
    if app is not None and hasattr(app, "app_context"):
        from webapp import metrics

        with app.app_context():
            metrics.flush_status_counts()
