"""Property-based fuzzing of the whole API from its own `/openapi.json` (issue 20):
schemathesis generates requests for every operation (valid and invalid parameters,
bodies, huge integers, odd strings), as the administrator, on a small province; no answer
may be a 5xx, and every answer must match what the document declares for it (the shape of
refusals included, app/errors.py).

A bounded number of examples per operation keeps it to seconds per backend; a broader run
is `FUZZ_EXAMPLES=200 pytest tests/test_fuzz_openapi.py` (what found the causes in issue 20:
huge integers in ids and paging, nulls for required fields, control characters in
reports, NUL in text on PostgreSQL).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.factories import small_province
from tests.support import Stack

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))
# Operations that end the caller's own session or the process: fuzzed, they would only
# sign the fuzzer out (their refusals are tested in tests/security/).
SKIPPED = frozenset({"POST /api/v1/auth/logout"})
IDENTITY_HEADERS = frozenset({"authorization", "x-actor", "x-role", "x-area"})


@dataclass
class Findings:
    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def _fuzz(document: dict[str, Any], base_url: str) -> Findings:
    schema = schemathesis.openapi.from_dict(document)
    findings = Findings()
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        if label not in SKIPPED and operation.path.startswith("/api/"):
            _probe(operation, label, base_url, session, findings)()
    return findings


def _probe(
    operation: Any, label: str, base_url: str, session: requests.Session, findings: Findings
) -> Any:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # no shrinking: a failure is reported as found
        suppress_health_check=list(HealthCheck),
    )
    def probe(case: Any) -> None:
        # As the administrator: generated identity headers would only be refused (401).
        for name in [h for h in case.headers or {} if h.lower() in IDENTITY_HEADERS]:
            del case.headers[name]
        response = case.call(base_url=base_url, session=session, timeout=30)
        findings.requests += 1
        status = response.status_code
        findings.by_status[status] = findings.by_status.get(status, 0) + 1
        try:
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )
        except (Exception, BaseExceptionGroup) as failure:  # recorded, not raised
            if len(findings.failures) < 40:
                findings.failures.append(
                    f"{label} -> {status}: {str(failure)[:400]}\n   {case.as_curl_command()[:300]}"
                )

    return probe


async def test_no_operation_answers_5xx_or_outside_its_schema(stack: Stack) -> None:
    await small_province(stack)
    document = (await stack.client.get("/openapi.json")).json()
    findings = await asyncio.to_thread(_fuzz, document, str(stack.client.base_url))
    print(f"fuzzed {findings.requests} requests: {sorted(findings.by_status.items())}")
    assert findings.requests >= EXAMPLES * 50  # every operation was reached
    assert not findings.failures, "\n".join(findings.failures)
