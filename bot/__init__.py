"""The Relais chatbot: one conversation engine and its adapters (console, Discord, SMS, web)."""
