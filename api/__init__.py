"""Signoff's HTTP API (Litestar), its command line, and later the live monitor."""
