"""``python -m wizard`` runs the same entry point as the console script."""

from wizard.cli import main

raise SystemExit(main())
