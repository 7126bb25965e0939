"""Dramatiq actors and the plumbing around them.

Run workers with `dramatiq web.worker` and the periodic sweep with `periodiq web.periodic`
(see the Procfile). `tasks.broker.setup` must run before `tasks.actors` is imported: an actor
binds to the broker that is current when it is declared.
"""
