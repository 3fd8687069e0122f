"""Analyst tools built on the engine: compare two scenarios, sweep parameters, rank uncertain assumptions."""
