"""The domain core of the telecom billing ledger: contract, catalog, rating rules, aggregates."""
