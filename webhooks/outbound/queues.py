"""The holding pen's Twilio queues, kept at queue.twilio_queue_max_size (Twilio's own default is 1000).

`<Enqueue>` creates a queue that does not exist with Twilio's default MaxSize, and the pen counts callers up to
the configured size: a size above the default would make Twilio refuse callers (queue-full) before the pen
moved on to the next shard. So the periodic sweep sets each shard's MaxSize through the Queue resource, for
every shard in use and the next one before its first caller (callqueue.live.pen.to_size), once per size.
"""
from __future__ import annotations

import logging

from callqueue.live import pen
from callqueue.settings import queue_settings
from core.logs import log_event
from core.services import Services
from webhooks.outbound.gateway import GatewayError

log = logging.getLogger("hotline.pen")


def size_queues(svc: Services) -> int:
    """Set the MaxSize of the pen's queues that need it; return how many were set (a failure waits for the next
    sweep: the queue keeps the size it had)."""
    size = queue_settings(svc.config).twilio_queue_max_size
    done = 0
    for name in pen.to_size(svc.redis, svc.config):
        try:
            queue = svc.gateway.ensure_queue(name, size)
        except GatewayError as exc:
            log_event(log, "queue size not set", logging.WARNING, queue=name, status=exc.status, attempts=exc.attempts)
            break  # Twilio is failing: the next sweep tries again
        pen.sized(svc.redis, name, svc.config)
        log_event(log, "queue sized", queue=name, max_size=queue.max_size)
        done += 1
    return done
