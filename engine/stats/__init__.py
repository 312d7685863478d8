"""Time in state, SLAs, decisions and throughput, from counters kept in each transition."""
