"""``GET /api/v1/customers/{id}/export`` and ``DELETE /api/v1/customers/{id}`` (admins only)."""

from __future__ import annotations

from tests.web.api.conftest import Desk


async def customer_id(desk: Desk, sender: str) -> int:
    async with desk.app.tickets.session() as tx:
        found = await tx.find_customer("rest", sender)
    assert found is not None
    return found.id


async def test_only_admins_export_and_erase(desk: Desk) -> None:
    await desk.customer_says("carol", "I want to talk to a human, I am Carol")
    cid = await customer_id(desk, "carol")
    client = desk.client_for()
    assert (await client.get(f"/api/v1/customers/{cid}/export")).status_code == 401
    assert (await client.delete(f"/api/v1/customers/{cid}")).status_code == 401
    agent = await desk.bearer("eve@shop.test")
    assert (await client.get(f"/api/v1/customers/{cid}/export", headers=agent)).status_code == 403
    assert (await client.delete(f"/api/v1/customers/{cid}", headers=agent)).status_code == 403
    # A browser session without the CSRF header cannot erase either.
    browser, csrf = await desk.session("root@shop.test", role="admin")
    assert (await browser.delete(f"/api/v1/customers/{cid}")).status_code == 403
    exported = await browser.get(f"/api/v1/customers/{cid}/export")
    assert exported.status_code == 200
    assert "I am Carol" in exported.text  # nothing was erased by the refused calls


async def test_export_then_erase(desk: Desk) -> None:
    await desk.customer_says("dave", "I want to talk to a human, call me at +33 6 11 22 33 44")
    cid = await customer_id(desk, "dave")
    admin = await desk.bearer("root@shop.test", role="admin")
    client = desk.client_for()
    exported = await client.get(f"/api/v1/customers/{cid}/export", headers=admin)
    assert f'deskbot-customer-{cid}.json' in exported.headers["content-disposition"]
    data = exported.json()
    assert data["identities"][0]["external_id"] == "dave"
    assert any("+33 6 11 22 33 44" in m["text"] for m in data["messages"])
    assert len(data["tickets"]) == 1 and data["tickets"][0]["events"]

    erased = await client.delete(f"/api/v1/customers/{cid}", headers=admin)
    assert erased.status_code == 200, erased.text
    assert erased.json()["erased"] == cid and erased.json()["identities"] == 1
    after = (await client.get(f"/api/v1/customers/{cid}/export", headers=admin)).json()
    assert "+33 6 11 22 33 44" not in str(after) and "dave" not in str(after).lower()
    assert after["identities"] == [] and after["tickets"][0]["kind"] == "handoff"
    assert after["tickets"][0]["status"] == "closed"

    # The same sender writing again is a new, unrelated customer.
    await desk.customer_says("dave", "hello again")
    assert await customer_id(desk, "dave") != cid


async def test_unknown_customers_are_404(desk: Desk) -> None:
    admin = await desk.bearer("root@shop.test", role="admin")
    client = desk.client_for()
    assert (await client.get("/api/v1/customers/999999/export", headers=admin)).status_code == 404
    assert (await client.delete("/api/v1/customers/999999", headers=admin)).status_code == 404
    assert (await client.get("/api/v1/customers/abc/export", headers=admin)).status_code in (400, 422)
