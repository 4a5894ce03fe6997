"""The agents' group in two processes: only the leader posts; both act on the group's updates.

Two ``AgentsGroup`` objects on one app (one store, one bus: on the Redis pair a real Redis
pub/sub both subscribe to) stand for the leader and a follower. The follower is ``open``
(as every process behind a webhook is) but does not post; when the leader stops posting and
the follower starts, lines go on from the follower, each once.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from bot.app import App, agents_desk
from bot.channels.telegram.agents.group import AgentsGroup, AgentsGroupSettings
from bot.cli.agents_telegram import link_telegram
from tests.channels.telegram.agents_support import AGENTS_CHAT, VirtualTime, desk_app, eventually, group_message
from tests.factories import Chat
from tests.fakes.recording_api import RecordingTelegramApi

__all__ = ["desk_app"]

SAM = 601


@pytest.fixture
def api() -> RecordingTelegramApi:
    return RecordingTelegramApi(forums={AGENTS_CHAT}, members={(AGENTS_CHAT, SAM): "member"})


@pytest.fixture
async def pair(desk_app: App, api: RecordingTelegramApi) -> AsyncIterator[tuple[AgentsGroup, AgentsGroup]]:
    await link_telegram(desk_app.tickets, "sam@shop.example", str(SAM), name="Sam Agent")
    made = []
    for _ in range(2):
        clock = VirtualTime()
        settings = AgentsGroupSettings(AGENTS_CHAT, sla_check_seconds=3600)
        made.append(AgentsGroup(api, agents_desk(desk_app), settings, sleep=clock.sleep, monotonic=clock.monotonic))
    leader, follower = made
    await leader.start()
    await follower.open()
    yield leader, follower
    for group in made:
        await group.close()


def _lines(api: RecordingTelegramApi, thread: int, text: str) -> int:
    return sum(1 for line in api.in_thread(thread) if text in line)


async def test_only_the_leader_posts_and_the_follower_takes_over_posting_once(
    desk_app: App, api: RecordingTelegramApi, pair: tuple[AgentsGroup, AgentsGroup]
) -> None:
    leader, follower = pair
    chat = Chat(desk_app, "olga")
    await chat.say("I want to talk to a human please")
    number = re.search(r"T-\d{4,}", chat.text)
    assert number is not None
    await eventually(lambda: len(api.topics) == 1 and not leader.busy, "the card posted by the leader")
    thread = next(iter(api.topics))

    await chat.say("my parcel is late")
    await eventually(lambda: _lines(api, thread, "my parcel is late") > 0 and not leader.busy, "the leader's line")

    # A follower behind a webhook acts on an agent's message in the topic.
    assert await follower.handle_update(group_message(SAM, "Sam here, checking now.", thread_id=thread))
    assert await chat.inbox() == ["Sam here, checking now."]

    # The takeover: the leader stops posting, the follower starts (its catch-up finds nothing new).
    await leader.stop_posting(grace=5.0)
    await follower.start_posting()
    await chat.say("any news?")
    await eventually(lambda: _lines(api, thread, "any news?") > 0 and not follower.busy, "the follower's line")

    assert not leader.busy
    assert _lines(api, thread, "my parcel is late") == 1
    assert _lines(api, thread, "any news?") == 1
    assert api.count("createForumTopic") == 1
    assert sum(1 for p in api.posted if number.group(0) in p.text and p.buttons) == 1  # one card
