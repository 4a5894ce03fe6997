"""Background jobs the app runs beside the channels: retention, order-id refresh, knowledge sync."""
