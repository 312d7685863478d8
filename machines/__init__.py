"""Signoff's declarative charts and the job handlers that hold their effects."""
