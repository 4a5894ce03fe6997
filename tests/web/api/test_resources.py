"""Agents, canned responses and the customer archive through the API, on both backend pairs."""

from __future__ import annotations

from tests.web.api.conftest import PASSWORD, Desk


async def test_admins_manage_agents_and_agents_can_see_the_team(desk: Desk) -> None:
    admin, headers = await desk.session("boss@example.com", role="admin")
    created = await admin.post("/api/v1/agents", headers=headers,
                               json={"email": "New@Example.com", "name": " New Agent ", "password": "long enough pw"})
    assert created.status_code == 201
    new = created.json()
    assert new["email"] == "new@example.com" and new["name"] == "New Agent" and new["role"] == "agent"
    assert "password" not in new and "password_hash" not in new
    duplicate = await admin.post("/api/v1/agents", headers=headers,
                                 json={"email": "new@example.com", "name": "X", "password": "long enough pw"})
    assert duplicate.status_code == 409
    for body, field in (({"email": "not-an-email", "name": "X", "password": "long enough pw"}, "email"),
                        ({"email": "x@example.com", "name": "X", "password": "short"}, "password"),
                        ({"email": "x@example.com", "name": "X", "password": "long enough pw", "role": "root"},
                         "role")):
        bad = await admin.post("/api/v1/agents", headers=headers, json=body)
        assert bad.status_code == 422 and field in bad.json()["error"], bad.json()
    promoted = await admin.patch(f"/api/v1/agents/{new['id']}", headers=headers,
                                 json={"role": "admin", "name": "Renamed", "password": "a brand new pw"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin" and promoted.json()["name"] == "Renamed"
    client = desk.client_for()
    await desk.login(client, "new@example.com", "a brand new pw")
    assert (await client.get("/api/v1/me")).json()["role"] == "admin"
    assert (await admin.patch("/api/v1/agents/9999", headers=headers, json={"name": "x"})).status_code == 404
    agent, _ = await desk.session("ann@example.com")
    emails = [a["email"] for a in (await agent.get("/api/v1/agents")).json()]
    assert emails == ["boss@example.com", "new@example.com", "ann@example.com"]


async def test_a_new_password_logs_the_agent_out_everywhere(desk: Desk) -> None:
    admin, headers = await desk.session("boss@example.com", role="admin")
    ann, _ = await desk.session("ann@example.com")
    ann_id = (await ann.get("/api/v1/me")).json()["id"]
    await admin.patch(f"/api/v1/agents/{ann_id}", headers=headers, json={"password": "another long pw"})
    assert (await ann.get("/api/v1/me")).status_code == 401
    old = desk.client_for()
    page = await old.get("/desk/login")
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    refused = await old.post("/desk/login", data={"email": "ann@example.com", "password": PASSWORD,
                                                  "csrf_token": csrf})
    assert refused.status_code == 401


async def test_canned_responses_are_curated_by_admins_and_rendered_per_ticket(desk: Desk) -> None:
    number = await desk.handoff("cust-1", display_name="Ada")
    admin, admin_headers = await desk.session("boss@example.com", role="admin")
    agent, agent_headers = await desk.session("ann@example.com")
    created = await admin.post("/api/v1/canned-responses", headers=admin_headers,
                               json={"title": "Greeting", "text": "Hi {customer_name}, {agent_name} here about "
                                                                   "{ticket_number}{order_id}."})
    assert created.status_code == 201
    canned_id = created.json()["id"]
    assert (await admin.post("/api/v1/canned-responses", headers=admin_headers,
                             json={"title": "Greeting", "text": "again"})).status_code == 409
    assert (await agent.post("/api/v1/canned-responses", headers=agent_headers,
                             json={"title": "Mine", "text": "x"})).status_code == 403
    assert [c["title"] for c in (await agent.get("/api/v1/canned-responses")).json()] == ["Greeting"]
    rendered = await agent.post(f"/api/v1/tickets/{number}/render-canned", headers=agent_headers,
                                json={"id": canned_id})
    assert rendered.json() == {"text": f"Hi Ada, Ann here about {number}."}
    assert (await agent.post(f"/api/v1/tickets/{number}/render-canned", headers=agent_headers,
                             json={"id": 999})).status_code == 404
    assert (await agent.delete(f"/api/v1/canned-responses/{canned_id}", headers=agent_headers)).status_code == 403
    assert (await admin.delete(f"/api/v1/canned-responses/{canned_id}", headers=admin_headers)).status_code == 204
    assert (await agent.get("/api/v1/canned-responses")).json() == []


async def test_the_customer_archive_shows_identities_tickets_tags_and_notes(desk: Desk) -> None:
    first = await desk.handoff("cust-1", display_name="Ada")
    client, headers = await desk.session("ann@example.com")
    await client.post(f"/api/v1/tickets/{first}/resolve", headers=headers)
    second = await desk.handoff("cust-1")
    detail = (await client.get(f"/api/v1/tickets/{second}")).json()
    customer = detail["customer"]
    assert customer["identities"] == [{"channel": "rest", "external_id": "cust-1"}]
    assert [t["number"] for t in customer["tickets"]] == [first]  # the earlier ticket
    archive = (await client.get(f"/api/v1/customers/{customer['id']}")).json()
    assert [t["number"] for t in archive["tickets"]] == [second, first]
    patched = await client.patch(f"/api/v1/customers/{customer['id']}", headers=headers,
                                 json={"tags": ["vip", "VIP", " late-payer "], "notes": "prefers e-mail"})
    assert patched.status_code == 200
    assert patched.json()["tags"] == ["vip", "late-payer"] and patched.json()["notes"] == "prefers e-mail"
    cleared = await client.patch(f"/api/v1/customers/{customer['id']}", headers=headers, json={"notes": None})
    assert cleared.json()["notes"] is None and cleared.json()["tags"] == ["vip", "late-payer"]
    assert (await client.patch(f"/api/v1/customers/{customer['id']}", headers=headers,
                               json={"tags": "vip"})).status_code == 422
    assert (await client.get("/api/v1/customers/9999")).status_code == 404
