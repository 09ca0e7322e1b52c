"""The settlement worker's part of ``rex config check``: what it reads beyond products.toml
and members.toml, loaded by the worker's own loaders (``python -m settlement_worker``)."""

from __future__ import annotations

from typing import Final

from rex.config_check import Exchange, ExtraCheck
from rex.environment import REX_BROKER_URL
from settlement_worker.bills.holidays import load_calendar
from settlement_worker.configuration import load_settlement
from settlement_worker.requests.desk import operators_from_env


def _settlement(exchange: Exchange) -> object:
    process_config = exchange.process_config
    return load_settlement(process_config.settlement_file, exchange.products(), exchange.members())


def _holidays(exchange: Exchange) -> object:
    return load_calendar(exchange.process_config.holidays_file)


def _operators(exchange: Exchange) -> object:
    env = exchange.env
    return operators_from_env(env, REX_BROKER_URL.get(env), exchange.members())


CHECKS: Final[tuple[ExtraCheck, ...]] = (
    ("settlement.toml", _settlement),
    ("holidays.toml", _holidays),
    ("the operators (REX_OPERATORS)", _operators),
)
