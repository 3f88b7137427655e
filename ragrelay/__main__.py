"""``python -m ragrelay``: the ``ragrelay`` command line."""

from ragrelay.cli import main

main()
