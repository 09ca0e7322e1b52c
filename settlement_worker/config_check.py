"""The settlement worker's part of ``rex config check``: what it reads beyond products.toml
and members.toml, loaded by the worker's own loaders (``python -m settlement_worker``)."""

from __future__ import annotations

from typing import Final

from rex.config_check import Exchange, ExtraCheck
from settlement_worker.bills.holidays import load_calendar
from settlement_worker.configuration import load_settlement


def _settlement(exchange: Exchange) -> object:
    process_config = exchange.process_config
    return load_settlement(process_config.settlement_file, exchange.products(), exchange.members())


def _holidays(exchange: Exchange) -> object:
    return load_calendar(exchange.process_config.holidays_file)


CHECKS: Final[tuple[ExtraCheck, ...]] = (
    ("settlement.toml", _settlement),
    ("holidays.toml", _holidays),
)
