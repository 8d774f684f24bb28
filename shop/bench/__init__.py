"""Benchmarks: programs that print numbers (events/s, latency percentiles, ratios); not tests."""
