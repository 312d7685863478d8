"""Signoff: a statechart-driven approval engine."""
