"""The ticket store's records, one module per aggregate; ``TicketSession`` composes them."""
