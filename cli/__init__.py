"""The `ledger` command: ingestion, support queries and finance tools."""
