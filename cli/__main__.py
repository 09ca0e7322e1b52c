"""``python -m cli``: the ``rex`` command line."""

from cli.main import main

raise SystemExit(main())
