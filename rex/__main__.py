"""``python -m rex``: the ``rex`` command line."""

from rex.cli import main

raise SystemExit(main())
