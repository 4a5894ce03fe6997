"""The agents' group on Telegram: escalated tickets posted there, worked from there.

``group.py`` (``AgentsGroup``) composes the parts, one responsibility each:

- out (event bus → group): ``lanes.py`` handles a ticket's events in order, ``poster.py``
  posts and keeps up to date its card and topic, ``lines.py`` words each event as a line,
  ``topics.py`` creates topics within Telegram's rate limit, ``cards.py`` renders it all,
  ``catch_up.py`` finds the tickets left unposted before a restart;
- in (group → desk): ``inbox.py`` routes an update and acts on it once (``ledger.py``),
  ``messages.py`` relays replies and runs commands (``commands.py``), ``buttons.py`` the
  card's Claim / Resolve, ``members.py`` lets only registered agents act, ``threads.py``
  finds the ticket a message is about, ``answers.py`` words refusals;
- ``chat.py`` talks to the group with retries; ``setup.py`` is what the group is given.
"""
