"""``python -m fiscal_sim.cli``: the same as the ``fiscal-sim`` command."""

from fiscal_sim.cli import main

main()
