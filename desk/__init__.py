"""The agents' services: what agents do to tickets, their accounts, canned responses, SLA and its alerts.

The customer's dialogue lives in ``handlers/``; this package serves the people who answer
when the bot hands over (the web workspace, the agents' Telegram group and the CLI call it).
"""
