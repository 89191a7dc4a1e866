"""`hotline bench`: whole calls under gunicorn, timed per webhook step, and the queue's own latency."""
