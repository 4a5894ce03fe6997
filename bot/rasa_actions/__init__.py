"""deskbot as a Rasa action server: ticket operations for an existing Rasa assistant.

``operations`` is plain deskbot; ``server`` needs the ``deskbot[rasa]`` extra (rasa-sdk).
"""
