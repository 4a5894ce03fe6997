"""Files and contacts a customer sends: attach them where they belong, explain what is refused.

A photo of a damaged parcel matters only next to its request, so an accepted file goes to
the form in progress (it ends up in the ticket's fields) or to the customer's latest open
ticket (an ``attachment`` event). With neither, the file is *held* (in the conversation
state, slot ``attachments`` while no form runs) and goes with the request that follows: a
photo whose caption is the complaint lands on the ticket the caption opens in the same
turn; a caption that starts a return puts it in the return form; a photo sent before
saying anything waits for the request (``place_held``, run after every handler by
``handlers/router.py``). A file the channel refused (too large, a type the shop does not
accept) is explained to the customer and noted on the ticket — never dropped silently. A
shared contact fills the phone number. Stickers, voice and locations are left to the
pipeline's "please write it as text".
"""

from __future__ import annotations

from typing import Any

from common.messages import Attachment
from handlers.context import Reply, Turn
from storage.models import Owner, Ticket

FILE_KINDS = ("photo", "document", "video", "audio", "animation")
HELD = "attachments"
"""The slot that holds files: the form's (they become ticket fields) or, with no form, the
files waiting for the request they belong to."""
MAX_HELD = 20


def _describe(item: Attachment) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": item.kind, "file_id": item.file_id}
    for key in ("name", "size", "mime_type", "refused"):
        value = getattr(item, key)
        if value is not None:
            data[key] = value
    return data


def _kind_word(turn: Turn, kind: str) -> str:
    key = f"kind_{kind}" if kind in ("photo", "document", "video") else "kind_file"
    return turn.t(key)


async def _current_ticket(turn: Turn) -> Ticket | None:
    """The ticket a file belongs to: the live handoff's, else the newest open one."""
    customer = turn.customer
    if customer.handoff_ticket_id is not None:
        ticket = await turn.tx.get_ticket(customer.handoff_ticket_id)
        if ticket is not None and ticket.is_open:
            return ticket
    open_tickets = await turn.tx.open_tickets(customer.id)
    return open_tickets[-1] if open_tickets else None


async def explain_refused(turn: Turn) -> bool:
    """Tell the customer why a file was refused and note it on their ticket; True if any was."""
    refused = [a for a in turn.msg.attachments if a.refused]
    if not refused:
        return False
    ticket = await _current_ticket(turn)
    for item in refused:
        reason, _, limit = (item.refused or "").partition(":")
        if ticket is not None:
            turn.ticket_id = turn.ticket_id or ticket.id
            note = f"The customer sent a {item.kind} that was refused ({reason})."
            await turn.tx.add_event(ticket, "system", "note", {"text": note, "file": _describe(item)})
        if reason == "too_large":
            size_mb = f"{(item.size or 0) / (1024 * 1024):.1f}"
            turn.say("file_too_large", size_mb=size_mb, limit_mb=limit or "?")
        else:
            turn.say("file_not_accepted", what=item.mime_type or item.kind)
    return True


async def receive(turn: Turn, text: str) -> bool:
    """Handle the message's files and contact; True when nothing is left for the pipeline."""
    items = turn.msg.attachments
    contact = next((a for a in items if a.kind == "contact" and a.phone), None)
    if contact is not None:
        if contact.own and contact.phone:
            turn.customer.phone = contact.phone[:40]  # the column's length
        if turn.state.form is None:
            turn.say("contact_saved" if contact.own else "attachment_as_text")
            return True
        return False  # the number is the message's text: the form takes it as the contact
    refused_any = await explain_refused(turn)
    files = [a for a in items if a.kind in FILE_KINDS and a.file_id and not a.refused]
    if not files:
        return refused_any and not text
    await _attach(turn, files)
    return not text


def _keep(turn: Turn, files: list[dict[str, Any]]) -> None:
    kept: list[dict[str, Any]] = list(turn.state.slots.get(HELD) or [])
    kept.extend(f for f in files if f not in kept)
    turn.state.slots[HELD] = kept[-MAX_HELD:]


async def _attach(turn: Turn, files: list[Attachment]) -> None:
    kind = _kind_word(turn, files[0].kind)
    if turn.state.form is not None:
        _keep(turn, [_describe(f) for f in files])
        turn.say("file_attached_form", kind=kind)
        return
    if turn.customer.owner != Owner.BOT:
        return  # the pipeline forwards the whole message to the agent's ticket
    ticket = await _current_ticket(turn)
    if ticket is None:
        # Held for the request that follows. A caption is that request (or the start of
        # it): the handler runs next and place_held puts the file where it led; a file
        # alone needs the question.
        _keep(turn, [_describe(f) for f in files])
        if not turn.msg.text.strip():
            turn.say("file_without_request", kind=kind)
        return
    turn.ticket_id = ticket.id
    await turn.tx.add_event(ticket, "customer", "attachment", {"files": [_describe(f) for f in files]})
    turn.say("file_attached_ticket", kind=kind, number=ticket.number)


def held(turn: Turn) -> list[dict[str, Any]]:
    """The files waiting for a request (none while a form runs: those are the form's)."""
    if turn.state.form is not None:
        return []
    return [dict(f) for f in turn.state.slots.get(HELD) or [] if isinstance(f, dict)]


async def place_held(turn: Turn, files: list[dict[str, Any]]) -> None:
    """After a handler: held files go to the form it started or the ticket it opened (or
    queued); else they keep waiting, and the customer hears so once, when they arrive."""
    if not files:
        return
    state = turn.state
    kind = _kind_word(turn, str(files[0].get("kind")))
    if state.form is not None:
        # A new form (start_return empties the slots first): the files are its attachments.
        already = state.slots.get(HELD) or []
        if not all(f in already for f in files):
            _keep(turn, files)
            turn.replies.insert(0, Reply(turn.t("file_attached_form", kind=kind), (), turn.ticket_id))
        return
    ticket = await turn.tx.get_ticket(turn.ticket_id) if turn.ticket_id is not None else None
    if ticket is not None and ticket.is_open and ticket.customer_id == turn.customer.id:
        state.slots.pop(HELD, None)
        await turn.tx.add_event(ticket, "customer", "attachment", {"files": files})
        turn.say("file_attached_ticket", kind=kind, number=ticket.number)
        return
    state.slots[HELD] = files  # still waiting (a handler may have emptied the slots)
    if _brought_files(turn):
        turn.say("file_kept", kind=kind)


def _brought_files(turn: Turn) -> bool:
    return any(a.kind in FILE_KINDS and a.file_id and not a.refused for a in turn.msg.attachments)
