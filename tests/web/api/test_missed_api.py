"""``/api/v1/missed`` and ``/api/v1/knowledge/additions`` on both backend pairs.

Customers ask the demo shop what it cannot answer; agents list it grouped and masked; an admin
turns a group into an FAQ phrasing or a product alias and the very next question is answered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from knowledge.shop import load_faq
from tests.web.api.conftest import Desk

FAQ = load_faq(Path(__file__).resolve().parents[3] / "examples" / "shop" / "faq.yml")
BITCOIN = "Do you take bitcoin?"  # a payment question the demo FAQ does not answer (its answer names no crypto)
PULLOVER = "how much is the comfy pullover"


def answer(entry_id: str, language: str = "en") -> str:
    entry = FAQ.get(entry_id)
    assert entry is not None
    return entry.answer_for(language)


async def groups(client: Any) -> list[dict[str, Any]]:
    page = await client.get("/api/v1/missed")
    assert page.status_code == 200, page.text
    found: list[dict[str, Any]] = page.json()["groups"]
    return found


async def test_missed_questions_are_grouped_counted_and_masked(desk: Desk) -> None:
    await desk.customer_says("ann", BITCOIN)
    await desk.customer_says("bob", "do you take bitcoin")
    await desk.customer_says("bob", "How long does delivery take?")  # answered: not listed
    await desk.customer_says("cat", "Who designs your clothes? Write to cat.lover@mail.example or +31 6 1234 5678")
    client, _ = await desk.session("sam@shop.example")  # any agent may look

    page = (await client.get("/api/v1/missed")).json()
    assert page["total"] == 3 and page["truncated"] is False and page["days"] == 30
    bitcoin, designers = page["groups"]
    assert bitcoin["count"] == 2 and bitcoin["customers"] == 2 and bitcoin["language"] == "en"
    assert bitcoin["reasons"] == {"faq_unknown": 2} and bitcoin["handoffs"] == 0
    assert len(bitcoin["ids"]) == 2 and bitcoin["text"] in (BITCOIN, "do you take bitcoin")
    assert bitcoin["faq_suggestions"][0]["id"] == "payment_methods"
    assert designers["text"] == "Who designs your clothes? Write to c***@mail.example or ***78"
    assert "cat.lover" not in str(page) and "1234" not in str(page)
    assert designers["reasons"] == {"fallback": 1}

    targets = (await client.get("/api/v1/missed/targets?language=zh")).json()
    assert targets["languages"] == ["en", "zh"]
    assert {"id": "payment_methods", "topic": "payment", "question": FAQ.get("payment_methods").questions["zh"][0],  # type: ignore[union-attr]
            "score": None} in targets["faq"]
    assert any(p["sku"] == "HD-001" and p["name"] == "日常连帽卫衣" for p in targets["products"])

    assert (await client.get("/api/v1/missed?days=0")).status_code == 422
    assert (await client.get("/api/v1/missed?language=zh")).json()["groups"] == []
    only_one = (await client.get("/api/v1/missed?limit=1")).json()
    assert len(only_one["groups"]) == 1 and only_one["total"] == 3


async def test_an_admin_turns_a_group_into_a_phrasing_and_the_bot_answers_at_once(desk: Desk) -> None:
    await desk.customer_says("ann", BITCOIN)
    admin, headers = await desk.session("ada@shop.example", role="admin")
    agent, agent_headers = await desk.session("sam@shop.example")
    [group] = await groups(admin)
    body = {"missed_ids": group["ids"], "faq_id": "payment_methods", "language": "en", "text": group["text"]}

    refused = await agent.post("/api/v1/missed/phrasing", json=body, headers=agent_headers)
    assert refused.status_code == 403
    created = await admin.post("/api/v1/missed/phrasing", json=body, headers=headers)
    assert created.status_code == 201, created.text
    learned = created.json()
    assert learned["resolved"] == 1
    assert learned["addition"] | {"id": 0, "created_at": ""} == {
        "id": 0, "kind": "faq_phrasing", "target": "payment_methods", "language": "en", "text": BITCOIN,
        "created_at": "", "created_by": "Ada", "active": True,
    }
    assert await desk.customer_says("bob", BITCOIN) == [answer("payment_methods")]
    assert await groups(admin) == []  # resolved, and not missed again

    again = await admin.post("/api/v1/missed/phrasing", json=body, headers=headers)
    assert again.status_code == 409 and "already a phrasing of payment_methods" in again.json()["error"]
    additions = (await agent.get("/api/v1/knowledge/additions")).json()
    assert [(a["kind"], a["text"], a["active"]) for a in additions] == [("faq_phrasing", BITCOIN, True)]

    # Taken back: the bot no longer knows it, at once.
    gone = await admin.delete(f"/api/v1/knowledge/additions/{additions[0]['id']}", headers=headers)
    assert gone.status_code == 204
    assert "don't have an answer" in (await desk.customer_says("cat", BITCOIN))[0]
    assert (await admin.delete(f"/api/v1/knowledge/additions/{additions[0]['id']}", headers=headers)).status_code == 404


async def test_an_admin_adds_a_product_alias_and_conflicts_are_explained(desk: Desk) -> None:
    await desk.customer_says("ann", PULLOVER)
    admin, headers = await desk.session("ada@shop.example", role="admin")
    [group] = await groups(admin)
    assert group["reasons"] == {"product_unknown": 1}
    ids = group["ids"]

    def alias(sku: str, text: str, language: str = "en") -> dict[str, Any]:
        return {"missed_ids": ids, "sku": sku, "language": language, "text": text}

    cases = [
        (alias("HD-001", "jeans"), 409, "already names another product (JN-001"),
        (alias("HD-001", "hoodie"), 409, "already names HD-001"),
        (alias("NO-SUCH", "pullover"), 404, "no product with sku 'NO-SUCH'"),
        (alias("HD-001", "how much is the comfy pullover in black"), 422, "at most 6 words"),
        (alias("HD-001", "x" * 61), 422, "text"),
        (alias("HD-001", "pullover", "fr"), 422, "must be one of en, zh"),
        (alias("HD-001", "pullover", "EN"), 422, "language"),
        ({"missed_ids": [], "sku": "HD-001", "language": "en", "text": "pullover"}, 422, "missed_ids"),
    ]
    for body, status, message in cases:
        refused = await admin.post("/api/v1/missed/alias", json=body, headers=headers)
        assert refused.status_code == status, (body, refused.text)
        assert message in refused.json()["error"], (body, refused.text)
    assert len(await groups(admin)) == 1  # nothing was half-applied

    created = await admin.post("/api/v1/missed/alias", json=alias("HD-001", "comfy pullover"), headers=headers)
    assert created.status_code == 201, created.text
    reply = await desk.customer_says("bob", PULLOVER)
    assert len(reply) == 1 and "49.90" in reply[0]
    assert await groups(admin) == []


async def test_dismissing_takes_a_group_off_the_list(desk: Desk) -> None:
    await desk.customer_says("ann", "Who designs your clothes?")
    admin, headers = await desk.session("ada@shop.example", role="admin")
    [group] = await groups(admin)
    dismissed = await admin.post("/api/v1/missed/dismiss", json={"missed_ids": group["ids"]}, headers=headers)
    assert dismissed.status_code == 200 and dismissed.json() == {"addition": None, "resolved": 1}
    assert await groups(admin) == []
    assert (await admin.get("/api/v1/knowledge/additions")).json() == []
