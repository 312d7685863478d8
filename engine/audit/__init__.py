"""The tamper-evident audit trail: each history entry's hash chains to the one before it."""
