"""Benchmarks: `python -m bench.run` measures Signoff beside DBOS and writes bench/RESULTS.md."""
