"""Entry module of the scheduler process, `periodiq web.periodic`: the workers' app, on a broker
that waits out Redis outages (periodiq itself ends on the first send that fails), so that the
sweep is scheduled again as soon as Redis is back."""

from web import worker_app

app = worker_app({"BROKER_PATIENT": True})
