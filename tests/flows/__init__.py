"""Whole calls through the simulator, and tests that start the hotline's real processes (gunicorn, rq workers,
`hotline run`, `hotline call`, the bench)."""
