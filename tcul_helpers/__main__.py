"""``python -m tcul_helpers``: the command line (:mod:`tcul_helpers.cli`)."""

from .cli import main

raise SystemExit(main())
