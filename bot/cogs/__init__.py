"""Thin Discord adapters, one extension per area, over the conversation engine."""
