"""The stochastic inputs: counts, base amounts, tiers, options, attrition, shared shocks."""
