"""Entry module of the worker processes, `dramatiq web.worker`: the app factory builds the app
(installing the broker from REDIS_URL), the actors get their units of work from it and are
declared on that broker."""

from web import worker_app

app = worker_app()
