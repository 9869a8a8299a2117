"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`. Environment overrides shown inline."""

import os

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
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


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
