"""The planners' workbench (``fiscal-sim serve``): a local web application on :mod:`fiscal_sim.api`."""
