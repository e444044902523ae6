"""Read models kept from the ledger's notification log: balance, minutes, data, invoices."""
