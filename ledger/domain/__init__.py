"""The domain: each aggregate's events and rules, the catalogue of event types, grant scope."""
