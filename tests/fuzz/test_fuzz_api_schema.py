"""The JSON API under attack: schemathesis, driven by the app's own /api/openapi.json through the WSGI app (no
server): every operation, valid and invalid inputs, as an agent and as a supervisor (HTTP Basic). Checks: no 5xx,
only documented status codes and content types, answers that match the document's response schemas; invalid input
refused.

Reproducible (derandomized hypothesis, no example database); the number of requests is printed.
"""
from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.api_world import basic

EXAMPLES = 400  # per role and generation mode: the file runs in well under a minute

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    max_examples=EXAMPLES,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
)

@pytest.fixture
def api_schema(app: Any) -> Any:
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    # Credentials are sent by the test (an agent's or a supervisor's), not generated; and a query parameter the
    # document does not name is ignored, as HTTP APIs do, rather than counted as invalid input.
    schema.config.generation.update(with_security_parameters=False, allow_extra_parameters=False)
    return schema


@schemathesis.check
def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 5xx is a bug, but an operation's documented 502 (Twilio or the simulator did not do it) with its JSON
    error: nothing listens at these tests' Twilio address, so an operation that reaches it answers exactly that."""
    if (response.status_code == 502 and "502" in case.operation.definition.raw.get("responses", {})
            and isinstance(response.json(), dict) and response.json().get("error")):
        return None
    return not_a_server_error(ctx, response, case)


CHECKS = [no_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.mark.parametrize("login", ["ann", "sam"], ids=["agent", "supervisor"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_schemathesis_finds_no_error_and_every_answer_matches_the_document(
        api_schema: Any, world: Any, login: str, mode: GenerationMode, capsys: pytest.CaptureFixture[str]) -> None:
    operations = [r.ok() for r in api_schema.get_all_operations()]
    assert len(operations) >= 10, [op.label for op in operations]
    seen: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])
    t0 = time.perf_counter()

    @FUZZ
    @given(api_schema.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call_and_validate(headers=basic(login), checks=checks)
        seen[case.operation.label] += 1
        statuses[response.status_code] += 1

    run()
    with capsys.disabled():
        print(
            f"\n[fuzz] schemathesis {mode.value} as {login}: {sum(seen.values())} requests in "
            f"{time.perf_counter() - t0:.1f} s over {len(seen)} of {len(operations)} operations; "
            f"status codes {dict(sorted(statuses.items()))}"
        )
    # Invalid input needs an input to spoil: without unknown parameters, only operations with a query or a body have
    # one. (A string path parameter cannot be made invalid either.)
    expected = {op.label for op in operations
                if mode is GenerationMode.POSITIVE or op.definition.raw.get("requestBody")
                or any(p.get("in") == "query" for p in op.definition.raw.get("parameters", []))}
    assert expected <= set(seen), f"operations never exercised: {sorted(expected - set(seen))}"
