"""Workspace budgets: calendar periods, the ledger, and where it is stored."""
