"""The holding pen's Twilio queues get queue.twilio_queue_max_size at Twilio: a queue `<Enqueue>` makes on demand has
Twilio's default (1000), and the pen would count callers past it (webhooks/outbound/queues.py, run by the sweep)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from callqueue.live import pen
from core import keys
from core.services import Services
from hotline.configuration import full_config
from simulator import Fault, Simulator
from tests.support.common import AUTH_TOKEN
from tests.support.twiml_app import TwimlApp
from webhooks.outbound.gateway import TwilioGateway
from webhooks.outbound.queues import size_queues


@pytest.fixture
def sim() -> Any:
    with TwimlApp({}).sim() as s:
        yield s


def with_size(services: Services, sim: Simulator, tmp_path: Path, size: int) -> Services:
    """The test services, on a configuration whose Twilio queues hold `size` callers, talking to `sim`."""
    path = tmp_path / f"size{size}.toml"
    path.write_text(f'[queue]\ntwilio_queue_max_size = {size}\ntwilio_queue_prefix = "hotline"\n', encoding="utf-8")
    return dataclasses.replace(services, config=full_config(path),
                               gateway=TwilioGateway(sim.account_sid, AUTH_TOKEN, sim.api_url))


def sizes(sim: Simulator) -> dict[str, int]:
    return {q.friendly_name: q.max_size for q in sim.net.queues.all()}


def test_shards_in_use_the_next_one_and_the_degraded_queue_get_the_configured_size(
        services: Services, sim: Simulator, tmp_path: Path) -> None:
    svc = with_size(services, sim, tmp_path, 3000)
    sim.create_queue("hotline-1")  # as `<Enqueue>` made it for the first caller: Twilio's default size
    assert sizes(sim) == {"hotline-1": 1000}
    assert pen.assign(svc.redis, "CA" + "1" * 32, svc.config) == "hotline-1"

    assert size_queues(svc) == 3
    assert sizes(sim) == {"hotline-1": 3000, "hotline-2": 3000, "hotline-degraded": 3000}

    asked = len(sim.rest_requests())
    assert size_queues(svc) == 0 and len(sim.rest_requests()) == asked, "each queue is sized once, not every sweep"

    bigger = with_size(services, sim, tmp_path, 5000)  # the operator raised the size: every queue again
    assert size_queues(bigger) == 3 and set(sizes(sim).values()) == {5000}


def test_a_failing_twilio_leaves_the_sizes_to_the_next_sweep(services: Services, sim: Simulator,
                                                               tmp_path: Path) -> None:
    svc = with_size(services, sim, tmp_path, 2000)
    fault = sim.faults.add(Fault("GET", "/Queues.json", status=500, times=None))
    assert size_queues(svc) == 0 and fault.hits > 0
    assert not svc.redis.exists(keys.PEN_SIZED), "nothing is marked as sized that was not"
    sim.faults.clear()
    assert size_queues(svc) == 2  # no caller yet: shard 1 (the next one) and the degraded queue
    assert sizes(sim) == {"hotline-1": 2000, "hotline-degraded": 2000}
