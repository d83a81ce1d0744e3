"""SMS gateway: rules, the durable outbound queue, Twilio, inbound keywords (SPEC §8)."""
