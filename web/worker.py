"""Entry module of the worker processes, `dramatiq web.worker` and `periodiq web.worker`: the
app factory builds the app (installing the broker from REDIS_URL), the actors get their units
of work from it, and then the actors are declared."""

from tasks import runtime
from web import create_app, units_of_work

app = create_app()
runtime.bind(units_of_work(app))

from tasks import actors  # noqa: E402  (the broker must exist first)

__all__ = ["actors", "app"]
