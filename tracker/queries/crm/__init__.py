"""Queries the CRM's mailer and rules ask of the event store (one question, one module)."""
