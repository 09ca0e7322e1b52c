"""Every ``REX_*`` environment variable REX reads, in one registry.

Each :class:`Variable` says what it is for, who reads it, what it accepts and what unset
means, and every reader goes through :meth:`Variable.get`, so they all agree: an empty
variable counts as unset, and a value that does not parse is a :class:`ConfigError` naming
the variable and what it accepts. The table in docs/operators/configuration.md is made from
this registry (``python -m rex.environment --update docs/operators/configuration.md``;
``--markdown`` prints it) and a unit test fails when the two differ.

Adding a variable is one :func:`_define` entry below. Members' passwords are the exception:
their variables are whatever ``password_env`` in members.toml names.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import re
import sys
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Generic, TypeVar

from rex.errors import ConfigError

__all__ = [
    "MEMBER_ID_RE",
    "SHIPPED_CONFIG_DIR",
    "VARIABLES",
    "Kind",
    "Variable",
    "locate_config_dir",
    "markdown_table",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

#: A member id, which is also a RabbitMQ user name; operators' names follow it too.
MEMBER_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")

#: The configuration shipped with REX. In the repository ``rex/defaults`` is a link to
#: ``config/`` (the one copy), which the installed package carries as package data.
SHIPPED_CONFIG_DIR: Final = (Path(__file__).parent / "defaults").resolve()


# ----------------------------------------------------------------------------- kinds


@dataclass(frozen=True, slots=True)
class Kind(Generic[T_co]):
    """How a variable's text is read: ``parse`` raises ValueError unless the text is
    ``accepts``. ``show`` is how a bad value appears in the error (secrets never do)."""

    accepts: str
    parse: Callable[[str], T_co]
    show: Callable[[str], str] = repr

    def argument(self, text: str) -> T_co:
        """``parse`` as an argparse ``type=``, so an option accepts what its variable does."""
        try:
            return self.parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {self.accepts}, got {text!r}") from None


def _match(pattern: str, text: str) -> str:
    if re.fullmatch(pattern, text) is None:
        raise ValueError(text)
    return text


def _path(text: str) -> Path:
    return Path(text).expanduser()


def _port(text: str) -> int:
    port = int(_match(r"[0-9]{1,5}", text.strip()))
    if port > 65535:
        raise ValueError(text)
    return port


def _ip_address(text: str) -> str:
    return str(ipaddress.ip_address(text.strip()))  # ValueError unless IPv4 or IPv6


def _positive_int(text: str) -> int:
    count = int(_match(r"[0-9]{1,18}", text.strip()))
    if count < 1:
        raise ValueError(text)
    return count


def _replication_factor(text: str) -> int:
    factor = _positive_int(text)
    if factor > 7:  # rex.replication.MAX_FACTOR
        raise ValueError(text)
    return factor


def _positive_seconds(text: str) -> float:
    # Durations, not money: a float is exact enough for "every 600 s of log time".
    seconds = float(_match(r"[0-9]+(\.[0-9]+)?", text.strip()))
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(text)
    return seconds


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        parts = urllib.parse.urlsplit(text.strip())
        if parts.scheme not in schemes or not parts.hostname:
            raise ValueError(text)
        _ = parts.port  # raises ValueError on a port that is not a number in range
        return text.strip()

    return parse


def _amqp_urls(text: str) -> str:
    """One AMQP URL or a list of them (rex.broker_addresses), each a URL ``_url`` takes."""
    from rex.broker_addresses import BrokerAddressError, parse_addresses

    try:
        addresses = parse_addresses(text)
    except BrokerAddressError:
        raise ValueError(text) from None
    for url in addresses.urls:
        _url("amqp", "amqps")(url)
    return text.strip()


def _without_passwords(text: str) -> str:
    """A list of URLs as an error may show it: every password replaced by ``***``."""
    from rex.broker_addresses import split_urls

    urls = split_urls(text)
    if len(urls) <= 1:
        return _without_password(text)
    return repr(", ".join(_without_password(u).strip("'\"") for u in urls))


def _without_password(text: str) -> str:
    """A URL as an error may show it: the password replaced by ``***``."""
    try:
        parts = urllib.parse.urlsplit(text)
        if parts.password is None:
            return repr(text)
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return repr(urllib.parse.urlunsplit(parts._replace(netloc=netloc)))
    except ValueError:
        return "a value that is not a URL"


def _secret(_text: str) -> str:
    return "a value (not shown: it is a secret)"


def _int_list(text: str) -> tuple[int, ...]:
    return tuple(int(_match("[0-9]{1,18}", n.strip())) for n in text.split(","))


def _symbol_list(text: str) -> tuple[str, ...]:
    symbols = tuple(symbol.strip() for symbol in text.split(",") if symbol.strip())
    if not symbols:
        raise ValueError(text)
    return symbols


def _one_of(*choices: str, fold: Callable[[str], str] = str.strip) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = fold(text.strip())
        if value not in choices:
            raise ValueError(text)
        return value

    return parse


def _flag(text: str) -> bool:
    return _match("[01]", text.strip()) == "1"


PATH: Final = Kind("a directory path", _path)
AMQP_URL: Final = Kind(
    "an AMQP URL, amqp://user:password@host:port/vhost (vhost %2F is /)",
    _url("amqp", "amqps"),
    _without_password,
)
AMQP_URLS: Final = Kind(
    "an AMQP URL, amqp://user:password@host:port/vhost (vhost %2F is /), or a cluster's nodes "
    "as a list of such URLs separated by commas or spaces, all with the same user and vhost",
    _amqp_urls,
    _without_passwords,
)
HTTP_URL: Final = Kind(
    "an HTTP URL, http://user:password@host:port", _url("http", "https"), _without_password
)
POSTGRES_URL: Final = Kind(
    "a PostgreSQL URL, postgresql://user@host:port/database",
    _url("postgresql", "postgres"),
    _without_password,
)
PORT: Final = Kind("a port number from 0 to 65535 (0: any free port)", _port)
IP_ADDRESS: Final = Kind(
    "an IP address of this host to listen on, e.g. 127.0.0.1 (this host only), 0.0.0.0 "
    "(every IPv4 interface) or ::1",
    _ip_address,
)
POSITIVE_INT: Final = Kind("a whole number, 1 or more", _positive_int)
REPLICATION_FACTOR: Final = Kind(
    "a number of copies from 1 to 7 (at most the cluster's nodes)", _replication_factor
)
POSITIVE_SECONDS: Final = Kind(
    "a number of seconds greater than 0, e.g. 600 or 0.5", _positive_seconds
)
LOG_LEVEL: Final = Kind(
    "DEBUG, INFO, WARNING, ERROR or CRITICAL (any case)",
    _one_of("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", fold=str.upper),
)
MEMBER_ID: Final = Kind(
    "a member id: 1-32 letters, digits, '_' or '-'",
    lambda text: _match(MEMBER_ID_RE.pattern, text.strip()),
)
GROUP_NAME: Final = Kind(
    "an engine group name: 1-32 letters, digits, '_' or '-'",
    lambda text: _match(MEMBER_ID_RE.pattern, text.strip()),
)
SYMBOL_LIST: Final = Kind("comma-separated product symbols, e.g. PRND-OX,ND-OX", _symbol_list)
SECRET: Final = Kind("a non-empty password", str, _secret)
FLAG: Final = Kind("1 (yes) or 0 (no)", _flag)


# ------------------------------------------------------------------------- variables


@dataclass(frozen=True, slots=True)
class Variable(Generic[T_co]):
    """One environment variable: ``get`` is its value, ``default`` when unset or empty."""

    name: str
    kind: Kind[T_co]
    default: T_co
    unset: str  # what unset means, as docs/operators/configuration.md says it
    meaning: str
    read_by: str

    def get(self, env: Mapping[str, str] = os.environ) -> T_co:
        """The value in ``env``; raises :class:`ConfigError` naming the variable, what it
        accepts and what unsetting it would mean, if it does not parse."""
        text = env.get(self.name, "")
        if not text.strip():
            return self.default
        try:
            return self.kind.parse(text)
        except ValueError:
            raise ConfigError(
                self.name,
                f"must be {self.kind.accepts}, got {self.kind.show(text)}; "
                f"fix it, or unset it for the default ({self.unset.replace('`', '')})",
            ) from None


_REGISTRY: list[Variable[object]] = []


def _define(
    name: str, kind: Kind[T], default: T, *, meaning: str, read_by: str, unset: str = ""
) -> Variable[T]:
    """Register one variable. ``unset`` may be left out when the default says it all."""
    if not unset:
        if default is None:
            raise ValueError(f"{name}: say what unset means")
        unset = f"`{default}`"
    variable = Variable(name, kind, default, unset, meaning, read_by)
    _REGISTRY.append(variable)
    return variable


_SERVICES: Final = "gateway, engine, settlement worker"
_STORE_COMMANDS: Final = "rex reconcile, statement, dispute, payments, bills, offline"

REX_CONFIG_DIR: Final = _define(
    "REX_CONFIG_DIR",
    PATH,
    None,
    unset="the configuration shipped with REX: the repository's `config/`, or the installed "
    "package's copy of it",
    meaning="directory holding `products.toml`, `members.toml`, `settlement.toml` and "
    "`holidays.toml`; must exist when set",
    read_by=f"{_SERVICES}, the rex command, demo, loadtest",
)
REX_DATA_DIR: Final = _define(
    "REX_DATA_DIR",
    PATH,
    Path("data"),
    unset="`data` in the working directory",
    meaning="where services write: the gateway's seen-ids store, the settlement store "
    "(SQLite), bank simulators' ledgers, the embedded demo",
    read_by=f"gateway, settlement worker, bank simulator, demo, {_STORE_COMMANDS}",
)
REX_BROKER_URL: Final = _define(
    "REX_BROKER_URL",
    AMQP_URLS,
    "amqp://guest:guest@127.0.0.1:5672/%2F",
    meaning="RabbitMQ, vhost included; its user declares the topology in `rex provision`, "
    "and is the login of each service without a URL of its own (`REX_GATEWAY_BROKER_URL`, "
    "...); not an operator: it may send no settlement request (`rex halt` logs in with it "
    "only when `REX_OPERATOR_URL` is unset, and is refused)",
    read_by=f"{_SERVICES}, bank simulator, the rex command, loadtest",
)
REX_REPLICATION: Final = _define(
    "REX_REPLICATION",
    REPLICATION_FACTOR,
    None,
    unset="3 when the broker URL lists several nodes (a cluster), 1 when it names one",
    meaning="copies RabbitMQ keeps of each quorum queue and stream REX declares "
    "(x-quorum-initial-group-size, x-initial-cluster-size), set when a queue is created; "
    "`rex provision` refuses a factor the cluster's running nodes cannot meet. "
    "docs/operators/operations.md",
    read_by=f"{_SERVICES}, bank simulator, rex provision",
)
REX_OPERATOR_URL: Final = _define(
    "REX_OPERATOR_URL",
    AMQP_URLS,
    None,
    unset="`REX_BROKER_URL`",
    meaning="the operator's own login for `rex halt`, `resume`, `close`, `band` and every "
    "settlement command that changes something (`rex dispute open/resolve`, `rex payments "
    "--release/--resolve/--mark-paid`, `rex bills endorse/discount/mature/dishonour`, "
    "`rex offline report/confirm/decline/cancel`, `rex limits|my-bills --operator`), and "
    "`rex audit`: "
    "amqp://<operator>:<password>@host:port/vhost, an account of `operators.toml` "
    "(docs/operators/accounts.md)",
    read_by="the rex command",
)
REX_BROKER_ADMIN_URL: Final = _define(
    "REX_BROKER_ADMIN_URL",
    HTTP_URL,
    "http://guest:guest@127.0.0.1:15672",
    meaning="RabbitMQ management HTTP API, an administrator's credentials included",
    read_by="rex provision, demo --broker, loadtest",
)


def _service_broker_url(name: str, service: str, login: str) -> Variable[str | None]:
    return _define(
        f"REX_{name}_BROKER_URL",
        AMQP_URLS,
        None,
        unset="`REX_BROKER_URL`",
        meaning=f"RabbitMQ as the {service}'s own user `{login}` (`<REX_DEPLOYMENT>.{login}` "
        f"in a named deployment), vhost included; made by `rex provision` when "
        f"`REX_{name}_BROKER_PASSWORD` is set. docs/operators/security.md",
        read_by=service,
    )


def _service_broker_password(name: str, service: str, login: str) -> Variable[str | None]:
    return _define(
        f"REX_{name}_BROKER_PASSWORD",
        SECRET,
        None,
        unset=f"`rex provision` leaves the user `{login}` alone (with `--service-users`: an error)",
        meaning=f"the password `rex provision` gives the {service}'s broker user; the same "
        f"as in `REX_{name}_BROKER_URL`",
        read_by="rex provision",
    )


REX_GATEWAY_BROKER_URL: Final = _service_broker_url("GATEWAY", "gateway", "rex-gateway")
REX_ENGINE_BROKER_URL: Final = _service_broker_url("ENGINE", "engine", "rex-engine")
REX_SETTLEMENT_BROKER_URL: Final = _service_broker_url(
    "SETTLEMENT", "settlement worker", "rex-settlement"
)
REX_BANK_SIM_BROKER_URL: Final = _service_broker_url("BANK_SIM", "bank simulator", "rex-bank-sim")
REX_GATEWAY_BROKER_PASSWORD: Final = _service_broker_password("GATEWAY", "gateway", "rex-gateway")
REX_ENGINE_BROKER_PASSWORD: Final = _service_broker_password("ENGINE", "engine", "rex-engine")
REX_SETTLEMENT_BROKER_PASSWORD: Final = _service_broker_password(
    "SETTLEMENT", "settlement worker", "rex-settlement"
)
REX_BANK_SIM_BROKER_PASSWORD: Final = _service_broker_password(
    "BANK_SIM", "bank simulator", "rex-bank-sim"
)
REX_DATABASE_URL: Final = _define(
    "REX_DATABASE_URL",
    POSTGRES_URL,
    None,
    unset="SQLite: `settlement.sqlite3` in `REX_DATA_DIR`",
    meaning="the settlement store on PostgreSQL",
    read_by=f"settlement worker, {_STORE_COMMANDS}, settlement bench",
)
REX_METRICS_PORT: Final = _define(
    "REX_METRICS_PORT",
    PORT,
    None,
    unset="the service's own: gateway 9101, engine 9102, settlement worker 9103",
    meaning="Prometheus exporter port (`--metrics-port`); 0: any free port. A port asked "
    "for must be free (exit 5); the default, if taken, gives way to a free one",
    read_by=_SERVICES,
)
REX_METRICS_ADDRESS: Final = _define(
    "REX_METRICS_ADDRESS",
    IP_ADDRESS,
    "127.0.0.1",
    unset="`127.0.0.1`: this host only",
    meaning="address the Prometheus exporter listens on (`--metrics-address`). /metrics has "
    "no authentication: open it (`0.0.0.0`) only on a network Prometheus alone reaches, as "
    "docker-compose.yml does inside its containers",
    read_by=_SERVICES,
)
REX_LOG_LEVEL: Final = _define(
    "REX_LOG_LEVEL",
    LOG_LEVEL,
    "INFO",
    meaning="the lowest level of log line written",
    read_by=f"{_SERVICES}, bank simulator",
)
REX_BUS_CONFIRM_TIMEOUT: Final = _define(
    "REX_BUS_CONFIRM_TIMEOUT",
    POSITIVE_SECONDS,
    10.0,
    unset="`10`",
    meaning="seconds a service waits for the broker to confirm a publish before it counts "
    "as failed (logged, counted as rex_<service>_bus_confirm_timeouts_total, sent again); "
    "docs/operators/operations.md",
    read_by="gateway, engine, settlement worker, bank simulator",
)
REX_GATEWAY_SEEN_HORIZON: Final = _define(
    "REX_GATEWAY_SEEN_HORIZON",
    POSITIVE_SECONDS,
    86400.0,
    unset="`86400` (24 h)",
    meaning="seconds of exchange time the gateway remembers an answered request's "
    "message_id and client order id (its dedupe window); must outlast any gateway "
    "outage. docs/operators/operations.md",
    read_by="gateway",
)
REX_GATEWAY_SEEN_MAX_ROWS: Final = _define(
    "REX_GATEWAY_SEEN_MAX_ROWS",
    POSITIVE_INT,
    1_000_000,
    meaning="ids of each kind the gateway's dedupe window keeps per member; a member "
    "over it loses its own oldest first (~200 bytes of memory per id)",
    read_by="gateway",
)
REX_ENGINE_GROUP: Final = _define(
    "REX_ENGINE_GROUP",
    GROUP_NAME,
    "main",
    meaning="engine group: processes of one group share its lock, one trades (`--group`)",
    read_by="engine",
)
REX_ENGINE_PRODUCTS: Final = _define(
    "REX_ENGINE_PRODUCTS",
    SYMBOL_LIST,
    None,
    unset="every product of `products.toml`",
    meaning="products the engine group owns (`--products`)",
    read_by="engine",
)
REX_ENGINE_IMAGE_EVERY: Final = _define(
    "REX_ENGINE_IMAGE_EVERY",
    POSITIVE_INT,
    10_000,
    meaning="input-log entries between market images (`--image-every`)",
    read_by="engine",
)
REX_ENGINE_IMAGE_INTERVAL: Final = _define(
    "REX_ENGINE_IMAGE_INTERVAL",
    POSITIVE_SECONDS,
    600.0,
    unset="`600`",
    meaning="or seconds of log time between market images (`--image-interval`)",
    read_by="engine",
)
REX_MEMBER: Final = _define(
    "REX_MEMBER",
    MEMBER_ID,
    None,
    unset="give `--member`",
    meaning="the member a member command logs in as (`--member`)",
    read_by="rex order, cancel, replace, mass-cancel, executions, book, trades, limits, my-bills",
)
REX_PASSWORD: Final = _define(
    "REX_PASSWORD",
    SECRET,
    None,
    unset="the member's password from `members.toml`",
    meaning="that member's password (`--password`)",
    read_by="the member commands, as for `REX_MEMBER`",
)
REX_SKIP_SERVICES: Final = _define(
    "REX_SKIP_SERVICES",
    FLAG,
    False,
    unset="`0`",
    meaning="`1`: `make services` (so `make test`) does not start RabbitMQ/PostgreSQL",
    read_by="scripts/ensure-services.sh",
)
REX_TEST_DATABASE_URL: Final = _define(
    "REX_TEST_DATABASE_URL",
    POSTGRES_URL,
    "postgresql://root@127.0.0.1:5432/test",
    meaning="the PostgreSQL the tests marked `database` use (each in a schema of its own)",
    read_by="tests",
)
REX_TEST_AMQP_URL: Final = _define(
    "REX_TEST_AMQP_URL",
    AMQP_URL,
    "amqp://guest:guest@127.0.0.1:5672",
    meaning="the RabbitMQ the provisioning tests log in to, without a vhost (they make their own)",
    read_by="tests",
)
REX_CLUSTER_LONG: Final = _define(
    "REX_CLUSTER_LONG",
    FLAG,
    False,
    unset="`0`: the short versions, as `make test` runs them",
    meaning="1: the cluster kill tests (tests/cluster) trade 20 s before and 60 s after each "
    "node loss, not 5 s and 25 s (`make test-cluster` sets it)",
    read_by="tests",
)
REX_DEPLOYMENT: Final = _define(
    "REX_DEPLOYMENT",
    Kind(
        "1-32 lower-case letters, digits or '-', not starting with '-'",
        lambda text: _match(r"[a-z0-9][a-z0-9-]{0,31}", text.strip()),
    ),
    "",
    unset="no name: members log in as their member id",
    meaning="this deployment's name on a broker it shares: members log in as "
    "`<deployment>.<member>`, and `rex provision` touches only users marked as its own "
    '(docs/operators/runbook.md, "Several deployments on one broker")',
    read_by=f"{_SERVICES}, rex provision, rex member commands, the SDK callers",
)
REX_CURSOR_DIR: Final = _define(
    "REX_CURSOR_DIR",
    PATH,
    None,
    unset="`$XDG_STATE_HOME/rex/cursors` (`~/.local/state/rex/cursors`)",
    meaning="where the SDK and `rex` member commands keep each member's read position in "
    'its log (one small file per broker, vhost and login; docs/members/sdk.md, "Reading your '
    'log")',
    read_by="rex member commands, the SDK (rex/client.py)",
)
REX_INTERLEAVING_SEEDS: Final = _define(
    "REX_INTERLEAVING_SEEDS",
    Kind("comma-separated whole numbers, e.g. 11,23,37", _int_list),
    (11, 23, 37),
    unset="`11,23,37`",
    meaning="the seeds of the member-log interleaving test (each one generated sequence "
    "of commands, crashes and kills)",
    read_by="tests",
)
REX_BOOK_PROPERTY_PROFILE: Final = _define(
    "REX_BOOK_PROPERTY_PROFILE",
    Kind("book-ci or book-thorough", _one_of("book-ci", "book-thorough")),
    "book-ci",
    meaning="how many examples the order-book property test tries (500, or thousands)",
    read_by="tests",
)
REX_IMAGE_PROPERTY_PROFILE: Final = _define(
    "REX_IMAGE_PROPERTY_PROFILE",
    Kind("image-ci or image-thorough", _one_of("image-ci", "image-thorough")),
    "image-ci",
    meaning="how many examples the market-image property test tries (300, or thousands)",
    read_by="tests",
)

#: Every variable, in the order docs/operators/configuration.md lists them.
VARIABLES: Final[tuple[Variable[object], ...]] = tuple(_REGISTRY)


# ------------------------------------------------------------------ configuration dir


def locate_config_dir(env: Mapping[str, str] = os.environ) -> tuple[Path, str]:
    """The configuration directory and how it was found: ``REX_CONFIG_DIR`` if set (it
    must exist), else the configuration shipped with REX. The error names every place
    looked."""
    given = REX_CONFIG_DIR.get(env)
    shipped = f"the configuration shipped with REX, {SHIPPED_CONFIG_DIR}"
    if given is not None:
        if given.is_dir():
            return given, "from REX_CONFIG_DIR"
        state = "is not a directory" if given.exists() else "does not exist"
        raise ConfigError(
            "REX_CONFIG_DIR",
            f"{str(given)!r} {state}; set it to the directory holding products.toml and "
            f"members.toml, or unset it to use {shipped}",
        )
    if (SHIPPED_CONFIG_DIR / "products.toml").is_file():
        return SHIPPED_CONFIG_DIR, "shipped with REX"
    raise ConfigError(
        None,
        "no configuration found: REX_CONFIG_DIR is not set, and "
        f"{SHIPPED_CONFIG_DIR} (the configuration shipped with REX) has no products.toml; "
        "set REX_CONFIG_DIR to the directory holding products.toml and members.toml",
    )


# ---------------------------------------------------------------------------- docs

TABLE_BEGIN: Final = "<!-- environment table: python -m rex.environment --update FILE -->"
TABLE_END: Final = "<!-- end of environment table -->"


def markdown_table() -> str:
    """The registry as docs/operators/configuration.md shows it."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        "| variable | unset or empty | accepts | read by | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| `{v.name}` | {cell(v.unset)} | {cell(v.kind.accepts)} | {cell(v.read_by)} "
        f"| {cell(v.meaning)} |"
        for v in VARIABLES
    ]
    return "\n".join(lines) + "\n"


def with_table(document: str) -> str:
    """``document`` with the text between the table markers replaced by the table."""
    begin, end = document.find(TABLE_BEGIN), document.find(TABLE_END)
    if begin < 0 or end < begin:
        raise ValueError(f"no {TABLE_BEGIN!r} ... {TABLE_END!r} markers")
    head = document[: begin + len(TABLE_BEGIN)]
    return f"{head}\n{markdown_table()}{document[end:]}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rex.environment", description="REX's environment variables."
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--markdown", action="store_true", help="print the table")
    what.add_argument(
        "--update", type=Path, metavar="FILE", help="rewrite the table between FILE's markers"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown_table())
        return 0
    path: Path = args.update
    try:
        path.write_text(with_table(path.read_text(encoding="utf-8")), encoding="utf-8")
    except (OSError, ValueError) as error:
        print(f"rex.environment: {path}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
