"""Benchmarks: realistic traffic and one run that measures the ledger against raw baselines."""
