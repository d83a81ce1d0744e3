"""Slash commands of the conversation engine, registered by name."""
