"""``python -m potr`` = the ``potr`` command."""

from potr.cli import main

main()
