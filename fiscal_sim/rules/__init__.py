"""The rules layer: formula primitives, aggregate caps, payment schedules, formulas.

Pure numpy: no randomness, no I/O, and no imports from the rest of the package.
"""
