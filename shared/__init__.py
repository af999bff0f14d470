"""Contracts and kits shared by the registry and collection services.

Only what both services need lives here: event envelope and schemas, outbox relay and idempotent
consumer, money, errors, settings base, database sessions, logging, health checks.
"""
