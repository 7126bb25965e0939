"""Journey planning, execution and the sweep.

The pure rules live in `clock`, `vocab`, `program`, `plan` and `rules`: they import neither
Flask nor Dramatiq nor SQLAlchemy. `journey`, `execute` and `sweep` apply them to the database.
"""
