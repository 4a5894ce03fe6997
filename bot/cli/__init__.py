"""The ``deskbot`` command and its sub-commands, one module each (``main`` dispatches)."""
