"""The ``rex`` command: the one top layer of REX, which may import every service."""
