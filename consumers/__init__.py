"""Ingestion adapters: JSON Lines files and Kafka, sharing one pipeline."""
