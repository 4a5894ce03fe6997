"""Telegram through aiogram or python-telegram-bot: the only place either library is imported."""
