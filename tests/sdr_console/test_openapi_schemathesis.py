"""Schemathesis against /api/openapi.json: every operation, called with generated input by a signed-in admin
(a per-user token) over seeded data, answers no 5xx and nothing its declared response schema does not allow.

Path ids are drawn from the seeded rows plus one unknown id, so the 200 paths run, not only the 404s. The calls
go over a real socket to the test server (requests, in a worker thread: the server runs on this event loop).
Bounded: ``EXAMPLES`` cases per operation, no shrinking; the file stays well under a minute.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from bot.keys import SESSIONS
from storage.models import DuplicateSuggestion, Handoff, LeadNote, LeadTask, SavedFilter, Touchpoint
from storage.repos.teams import add_team, set_member
from tests.sdr_console.console_support import make_lead, user_with_token
from tests.support.forms import capture_config
from tests.support.miniprogram import mp_auth

EXAMPLES = 12
UNKNOWN_ID = 987_654_321
CHECKS = (not_a_server_error, response_schema_conformance)
# Never called: none. The admin's own account is kept out of the user ids (disabling it would end the run's
# token), which is the only thing narrowed.


@pytest.fixture(autouse=True)
def openapi_3_1() -> Any:
    schemathesis.experimental.OPEN_API_3_1.enable()  # schemathesis 3.x reads 3.1 documents as an experiment
    yield
    schemathesis.experimental.OPEN_API_3_1.disable()


async def seed(client: Any, admin_id: int) -> dict[str, list[Any]]:
    """Leads with identities, touchpoints, notes, tasks, a hand-off, a duplicate suggestion, users and a team."""
    others = [(await user_with_token(client, name, role, team="华东"))[0]
              for name, role in (("fuzz-sdr", "sdr"), ("fuzz-sales", "sales"), ("fuzz-lead", "team_lead"))]
    leads = [await make_lead(client, f"o-fuzz-{i}", owner=others[i % 2]) for i in range(8)]
    now = datetime.now(UTC)
    async with client.server.app[SESSIONS]() as session, session.begin():
        session.add_all([Touchpoint(lead_id=lead, kind="subscribe", scene="qr", channel="oa", source_code="expo",
                                    occurred_at=now, detail={"k": "v"}) for lead in leads])
        notes = [LeadNote(lead_id=lead, author_user_id=admin_id, author_label="fuzz-admin", body="跟进备注")
                 for lead in leads]
        tasks = [LeadTask(lead_id=lead, title="回电", created_by_user_id=admin_id) for lead in leads]
        handoffs = [Handoff(lead_id=lead, reason="no_intent", message="价格多少？") for lead in leads[:2]]
        suggestions = [DuplicateSuggestion(lead_id=a, other_lead_id=b, identity_kind="phone",
                                           identity_value=f"+86137000011{i}") for i, (a, b) in
                       enumerate(((leads[4], leads[5]), (leads[6], leads[7])))]
        filters = [SavedFilter(user_id=admin_id, name="我的筛选", query={"stage": ["mql"]})]
        session.add_all([*notes, *tasks, *handoffs, *suggestions, *filters])
        team = await add_team(session, "华南")
        await set_member(session, team.id, others[0])
        await session.flush()
        return {"lead_id": leads[:3], "task_id": [t.id for t in tasks], "handoff_id": [h.id for h in handoffs],
                "suggestion_id": [s.id for s in suggestions], "user_id": others, "team_id": [team.id],
                "filter_id": [f.id for f in filters], "form_id": ["demo"],
                # Calls that end what they touch get their own rows, so the others still reach a 200:
                "POST /api/leads/{lead_id}/erase lead_id": [leads[3]],
                "POST /api/duplicates/{suggestion_id}/merge suggestion_id": [suggestions[0].id],
                "POST /api/duplicates/{suggestion_id}/dismiss suggestion_id": [suggestions[1].id]}


def with_seeded_ids(doc: dict[str, Any], ids: dict[str, list[Any]]) -> dict[str, Any]:
    """Path ids drawn from the seeded rows and one unknown id (a 404)."""
    doc = copy.deepcopy(doc)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for param in op.get("parameters", []):
                own = f"{method.upper()} {path} {param['name']}"
                chosen = ids.get(own) or ids.get(param["name"])
                if param["in"] == "path" and chosen:
                    unknown = UNKNOWN_ID if isinstance(chosen[0], int) else "no-such-form"
                    param["schema"] = {"enum": [*chosen, unknown]}
    return doc


def fuzz_operation(operation: Any, base_url: str, headers: dict[str, str], statuses: set[int]) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        case.headers = {**(case.headers or {}), **headers}  # our caller, not a generated Authorization value
        response = case.call(base_url=base_url, timeout=20, allow_redirects=False)
        statuses.add(response.status_code)
        case.validate_response(response, checks=CHECKS)

    run()


def fuzz(schema: Any, base_url: str, console: dict[str, str], mini_program: dict[str, str],
         statuses: dict[str, set[int]]) -> tuple[int, list[str]]:
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        headers = mini_program if operation.path.startswith("/api/mp/") else console
        try:
            fuzz_operation(operation, base_url, headers, statuses.setdefault(operation.verbose_name, set()))
        except Exception as exc:  # noqa: BLE001 - every operation's failure is collected, then all are shown
            failures.append(f"{operation.verbose_name}: {str(exc)[:1500]}")
    return operations, failures


async def test_no_5xx_and_every_answer_matches_its_schema(app_client, backend, fake) -> None:
    # The mini-program enabled, against the fake WeChat: its routes answer as in production, not 503.
    client = await app_client(capture_config(backend, api_base_url=fake.base_url))
    admin_id, token = await user_with_token(client, "fuzz-admin", "admin")
    visitor = await mp_auth(client, fake, "mp_fuzz_1")
    ids = await seed(client, admin_id)
    doc = await (await client.get("/api/openapi.json")).json()
    base_url = str(client.make_url("")).rstrip("/")
    schema = schemathesis.openapi.from_dict(with_seeded_ids(doc, ids), base_url=base_url)
    statuses: dict[str, set[int]] = {}
    operations, failures = await asyncio.to_thread(fuzz, schema, base_url, {"Authorization": f"Bearer {token}"},
                                                   visitor, statuses)
    assert operations == sum(len(ops) for ops in doc["paths"].values())
    assert failures == [], "\n\n".join(failures)
    # The seeded data is reached: the answers are checked against their schemas, not only the errors'.
    succeeded = sorted(name for name, seen in statuses.items() if any(200 <= s < 300 for s in seen))
    assert len(succeeded) >= operations * 2 // 3, succeeded
    for must in ("GET /api/leads/{lead_id}", "GET /api/leads/{lead_id}/score", "GET /api/duplicates",
                 "GET /api/leads/{lead_id}/notes", "GET /api/audit", "GET /api/outbox", "GET /api/mp/forms/{form_id}",
                 "POST /api/duplicates/{suggestion_id}/merge", "POST /api/leads/{lead_id}/notes"):
        assert must in succeeded, must
