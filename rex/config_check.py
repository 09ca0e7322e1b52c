"""``rex config check``: load and validate everything a service will read, and collect
every problem instead of stopping at the first.

What is checked: every variable of :mod:`rex.environment`; the configuration directory;
``products.toml``; ``members.toml``; every enabled member's password (its ``password_env``
must be set); ``operators.toml`` if there is one (rex.operators: every enabled account's
password set, no account named like a member); ``REX_MEMBER`` and ``REX_ENGINE_PRODUCTS``
against those files; and the checks a caller adds for files of the services above
``rex/`` (the settlement worker's ``settlement.toml``, ``holidays.toml`` and operators),
each run even when another failed.
Within one file the loader stops at the file's first error; fixing it shows the next.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from rex.config import ConfigError, Member, ProcessConfig, Product
from rex.environment import REX_ENGINE_PRODUCTS, REX_MEMBER, VARIABLES, locate_config_dir
from rex.operators import OperatorAccount, check_against_members

__all__ = ["CheckReport", "Exchange", "ExtraCheck", "NotChecked", "check_configuration"]

T = TypeVar("T")


class NotChecked(Exception):
    """A check that needs a file which did not load; it is reported as not checked."""


@dataclass(frozen=True, slots=True)
class Exchange:
    """What an added check may read: the process configuration (for the files' names; the variables
    are in ``env``), the environment, and the products and members if their files loaded."""

    process_config: ProcessConfig
    env: Mapping[str, str]
    loaded_products: Mapping[str, Product] | None
    loaded_members: Mapping[str, Member] | None

    def products(self) -> Mapping[str, Product]:
        if self.loaded_products is None:
            raise NotChecked("products.toml")
        return self.loaded_products

    def members(self) -> Mapping[str, Member]:
        if self.loaded_members is None:
            raise NotChecked("members.toml")
        return self.loaded_members


#: A named check of one more file or variable: raises ConfigError, or NotChecked.
ExtraCheck = tuple[str, Callable[[Exchange], object]]


@dataclass(slots=True)
class CheckReport:
    config_dir: Path | None = None
    found_by: str = ""
    products: dict[str, Product] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    operators: dict[str, OperatorAccount] = field(default_factory=dict)
    checked: list[str] = field(default_factory=list)  # names of the added checks that passed
    problems: list[ConfigError] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)  # "settlement.toml (needs ...)"

    def add(self, problem: ConfigError) -> None:
        """Keep ``problem`` unless the same one is already kept."""
        if all(str(problem) != str(seen) for seen in self.problems):
            self.problems.append(problem)


def check_configuration(
    env: Mapping[str, str],
    config_dir: Path | None = None,
    extra: Sequence[ExtraCheck] = (),
) -> CheckReport:
    """Everything checked; ``config_dir`` is a command's ``--config-dir``, if given."""
    report = CheckReport()
    for variable in VARIABLES:
        try:
            variable.get(env)
        except ConfigError as problem:
            report.add(problem)
    try:
        if config_dir is None:
            config_dir, report.found_by = locate_config_dir(env)
        else:
            report.found_by = "from --config-dir"
        # For the files' names only: the variables were checked above, one by one.
        process_config = ProcessConfig.from_env({}, config_dir=config_dir)
    except ConfigError as problem:
        report.add(problem)
        return report
    report.config_dir = process_config.config_dir
    products = _load(report, process_config.products)
    members = _load(report, process_config.members)
    if products is not None:
        report.products = products
        _check_engine_products(report, env, process_config, products)
    if members is not None:
        report.members = members
        _check_passwords(report, env, members)
        _check_member_variable(report, env, process_config, members)
    operators = _load(report, process_config.operators)
    if operators is not None:
        report.operators = operators
        _check_operators(report, env, process_config, operators, members)
    exchange = Exchange(process_config, env, products, members)
    for name, run in extra:
        try:
            run(exchange)
        except ConfigError as problem:
            report.add(problem)
        except NotChecked as missing:
            report.not_checked.append(f"{name} (it needs a valid {missing})")
        else:
            report.checked.append(name)
    return report


def _load(report: CheckReport, load: Callable[[], T]) -> T | None:
    try:
        return load()
    except ConfigError as problem:
        report.add(problem)
        return None


def _check_passwords(
    report: CheckReport, env: Mapping[str, str], members: Mapping[str, Member]
) -> None:
    """Every enabled member's password must resolve: provisioning and the demo log in
    with it. A disabled member has no user, so needs none."""
    for member in members.values():
        if member.enabled:
            try:
                member.resolve_password(env)
            except ConfigError as problem:
                report.add(problem)


def _check_operators(
    report: CheckReport,
    env: Mapping[str, str],
    process_config: ProcessConfig,
    operators: Mapping[str, OperatorAccount],
    members: Mapping[str, Member] | None,
) -> None:
    """Every enabled operator account's password must resolve (`rex provision` sets it),
    and no account may be named like a member (they would share a broker user)."""
    for account in operators.values():
        if account.enabled:
            try:
                account.resolve_password(env)
            except ConfigError as problem:
                report.add(problem)
    if members is not None:
        try:
            check_against_members(operators, members, process_config.operators_file)
        except ConfigError as problem:
            report.add(problem)


def _check_member_variable(
    report: CheckReport,
    env: Mapping[str, str],
    process_config: ProcessConfig,
    members: Mapping[str, Member],
) -> None:
    member = _load(report, lambda: REX_MEMBER.get(env))
    if member is not None and member not in members:
        report.add(
            ConfigError(
                "REX_MEMBER",
                f"no member {member!r} in {process_config.members_file}; set it to one of "
                f"{', '.join(members)}, or unset it",
            )
        )


def _check_engine_products(
    report: CheckReport,
    env: Mapping[str, str],
    process_config: ProcessConfig,
    products: Mapping[str, Product],
) -> None:
    symbols = _load(report, lambda: REX_ENGINE_PRODUCTS.get(env)) or ()
    unknown = [symbol for symbol in symbols if symbol not in products]
    if unknown:
        report.add(
            ConfigError(
                "REX_ENGINE_PRODUCTS",
                f"no product {', '.join(map(repr, unknown))} in {process_config.products_file}; "
                f"list symbols of {', '.join(products)}, or unset it for all",
            )
        )
