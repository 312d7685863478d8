"""Signoff's runtime: persistence, the dispatcher, jobs, the worker."""
