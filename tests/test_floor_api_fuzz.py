"""The floor API fuzzed from its own OpenAPI description (schemathesis): every operation, with
inputs that fit the schema and inputs that do not, against a running `seatbox floor serve`
(real Mosquitto, real uvicorn). No answer may be a 500; every refusal is JSON naming what was
expected. The event stream (it never ends) is left out; tests/test_floor_http.py covers it.

Examples are capped per operation (FUZZ_EXAMPLES) to keep the run under ~40 s on the 2-core
machine; hypothesis' database is off so every run draws afresh.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from floor_web_support import Floor, Seats, add_token, start, write_config
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from support import Mosquitto

FUZZ_EXAMPLES = 25
LOGIN_EXAMPLES = 10  # each costs an Argon2id verification (~0.1-0.3 s here)
SKIPPED = {"/api/v1/floor/stream"}


@pytest.fixture(scope="module")
def floor(broker: Mosquitto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Floor]:
    config = write_config(tmp_path_factory.mktemp("fuzz"), broker, min_group_size=1)
    running = start(config)
    running.tokens = {"bi": add_token(config, "bi", "manager")}
    seats = Seats(broker)
    try:
        seats.online("A-01")
        yield running
    finally:
        seats.close()
        code = running.stop()
        log = running.log.read_text()
        assert "Traceback" not in log and "internal error" not in log, log[-3000:]
        assert code == 0, log[-2000:]


def operations(floor: Floor) -> list[tuple[str, str]]:
    schema = schemathesis.openapi.from_url(f"{floor.url}/api/v1/openapi.json")
    found = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path not in SKIPPED:
            found.append((operation.method.upper(), operation.path))
    return found


def test_the_openapi_description_lists_every_endpoint(floor: Floor) -> None:
    listed = operations(floor)
    for expected in (
        ("POST", "/api/v1/login"),
        ("POST", "/api/v1/logout"),
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/floor"),
        ("GET", "/api/v1/seats/{seat}/timeline"),
        ("GET", "/api/v1/reports/daily"),
        ("GET", "/metrics"),
    ):
        assert expected in listed


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_makes_the_api_answer_500(
    floor: Floor, mode: GenerationMode, tmp_path: Path
) -> None:
    schema = schemathesis.openapi.from_url(f"{floor.url}/api/v1/openapi.json")
    auth = {"Authorization": f"Bearer {floor.tokens['bi']}"}
    seen: list[tuple[str, int]] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in SKIPPED:
            continue

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=LOGIN_EXAMPLES if operation.path.endswith("/login") else FUZZ_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Case) -> None:
            headers = {
                key: value
                for key, value in (case.headers or {}).items()
                if mode is GenerationMode.NEGATIVE or key.lower() != "authorization"
            }
            if "authorization" not in {key.lower() for key in headers}:
                headers.update(auth)  # a valid token: the fuzzing gets past the login
            response = case.call(base_url=floor.url, headers=headers, timeout=10)
            seen.append((case.operation.label, response.status_code))
            assert response.status_code < 500, (case.operation.label, response.text[:300])
            kind = (response.headers.get("content-type") or [""])[0]
            if response.status_code >= 400 and kind.startswith("application/json"):
                body = response.json()
                assert isinstance(body, dict) and "error" in body and "field" in body
            if response.status_code == 200 and kind.startswith("application/json"):
                # The answer has the shape the description promises integrators.
                case.validate_response(
                    response, checks=[schemathesis.checks.response_schema_conformance]
                )

        try:
            fuzz()
        except Unsatisfiable:  # negative mode, no parameter to break: nothing to try
            assert mode is GenerationMode.NEGATIVE, operation.label
    labels = {label for label, _ in seen}
    if mode is GenerationMode.POSITIVE:
        assert len(labels) >= 7, labels  # every operation was called
        # Past the checks into the reports and timelines, not only refused at the door.
        assert ("GET /api/v1/reports/daily", 200) in seen
        assert ("GET /api/v1/seats/{seat}/timeline", 404) in seen
    else:
        assert {"GET /api/v1/reports/daily", "GET /api/v1/seats/{seat}/timeline"} <= labels
        assert any(400 <= status < 500 for _, status in seen)
