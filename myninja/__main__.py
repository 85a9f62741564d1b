"""`python -m myninja`: the same command line as the `myninja` script."""

from myninja.ninja_tui.cli.main import main

main()
