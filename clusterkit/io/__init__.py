"""The I/O side: Redis, DNS and HTTP clients, observation, applying a plan, slot migration,
settings, logging and the one way to wait. It imports the core; the core never imports it."""
