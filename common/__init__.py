"""What every layer shares and nothing else: the error root and the channel-neutral messages.

The bottom of the import graph: ``common`` imports no other deskbot package, and every
other package may import it (``tests/test_architecture.py`` checks both).
"""
