"""``python -m tcul_helpers``: the command line (:mod:`tcul_helpers.experiment.cli`)."""

from .experiment.cli import main

raise SystemExit(main())
