"""The registry of REX_* variables: empty is unset everywhere, a bad value is a ConfigError
naming the variable and what it accepts, the docs' table is the registry, and no reader
goes around it."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rex import environment, logs, metrics
from rex.config import ConfigError
from rex.environment import (
    PORT,
    REX_BROKER_URL,
    REX_ENGINE_IMAGE_EVERY,
    REX_ENGINE_IMAGE_INTERVAL,
    REX_LOG_LEVEL,
    REX_METRICS_PORT,
    VARIABLES,
    markdown_table,
    with_table,
)

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "operators" / "configuration.md"
SOURCES = ("rex", "engine", "gateway", "settlement_worker", "loadtest", "demo", "scripts")


@pytest.mark.parametrize("variable", VARIABLES, ids=lambda v: v.name)
@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_variable_counts_as_unset(
    variable: environment.Variable[object], empty: str
) -> None:
    assert variable.get({variable.name: empty}) == variable.get({}) == variable.default


def test_the_variables_the_issue_names_do_not_crash_when_empty() -> None:
    assert REX_ENGINE_IMAGE_EVERY.get({"REX_ENGINE_IMAGE_EVERY": ""}) == 10_000
    assert REX_ENGINE_IMAGE_INTERVAL.get({"REX_ENGINE_IMAGE_INTERVAL": ""}) == 600
    assert metrics.asked_port(None, {"REX_METRICS_PORT": ""}) is None  # the service default
    assert metrics.asked_port(None, {"REX_METRICS_PORT": "0"}) == (0, "REX_METRICS_PORT")
    assert metrics.asked_port(9200, {"REX_METRICS_PORT": "9300"}) == (9200, "--metrics-port")


@pytest.mark.parametrize(
    ("variable", "text", "value"),
    [
        (REX_METRICS_PORT, " 9300 ", 9300),
        (REX_ENGINE_IMAGE_INTERVAL, "0.5", 0.5),
        (REX_LOG_LEVEL, "debug", "DEBUG"),
    ],
)
def test_values_parse(variable: environment.Variable[object], text: str, value: object) -> None:
    assert variable.get({variable.name: text}) == value


@pytest.mark.parametrize(
    ("variable", "text", "message"),
    [
        (
            REX_ENGINE_IMAGE_EVERY,
            "1e4",
            "REX_ENGINE_IMAGE_EVERY: must be a whole number, 1 or more, got '1e4'; fix it, or "
            "unset it for the default (10000)",
        ),
        (
            REX_ENGINE_IMAGE_INTERVAL,
            "-1",
            "REX_ENGINE_IMAGE_INTERVAL: must be a number of seconds greater than 0, e.g. 600 or "
            "0.5, got '-1'; fix it, or unset it for the default (600)",
        ),
        (
            REX_METRICS_PORT,
            "65536",
            "REX_METRICS_PORT: must be a port number from 0 to 65535 (0: any free port), got "
            "'65536'; fix it, or unset it for the default (the service's own: gateway 9101, "
            "engine 9102, settlement worker 9103)",
        ),
        (
            REX_LOG_LEVEL,
            "loud",
            "REX_LOG_LEVEL: must be DEBUG, INFO, WARNING, ERROR or CRITICAL (any case), got "
            "'loud'; fix it, or unset it for the default (INFO)",
        ),
    ],
)
def test_a_bad_value_names_the_variable_and_what_it_accepts(
    variable: environment.Variable[object], text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        variable.get({variable.name: text})
    assert str(info.value) == message


def test_a_bad_url_is_shown_without_its_password() -> None:
    with pytest.raises(ConfigError) as info:
        REX_BROKER_URL.get({"REX_BROKER_URL": "http://rex:hunter2@broker:5672/"})
    assert "got 'http://rex:***@broker:5672/'" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_an_option_accepts_what_its_variable_does() -> None:
    assert PORT.argument("9300") == 9300
    with pytest.raises(argparse.ArgumentTypeError, match="must be a port number"):
        PORT.argument("http")


def _engine(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REX_")}
    return subprocess.run(
        [sys.executable, "-m", "engine"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_service_with_a_bad_variable_logs_the_error_and_exits_2() -> None:
    done = _engine(REX_ENGINE_IMAGE_EVERY="ten")
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    entry = logs.parse(line)
    assert entry is not None, line
    assert (entry["level"], entry["service"], entry["logger"]) == ("ERROR", "engine", "rex.engine")
    assert entry["message"] == (
        "config: REX_ENGINE_IMAGE_EVERY: must be a whole number, 1 or more, got 'ten'; fix it,"
        " or unset it for the default (10000)"
    )
    assert "exception" not in entry


def test_a_service_takes_empty_variables_as_unset() -> None:
    # It gets past them to the configuration directory, which here is missing on purpose.
    done = _engine(REX_ENGINE_IMAGE_EVERY="", REX_METRICS_PORT="", REX_CONFIG_DIR="missing")
    assert done.returncode == 2
    assert "config: REX_CONFIG_DIR: 'missing' does not exist" in done.stderr
    assert "Traceback" not in done.stderr


def test_each_constant_is_named_as_its_variable() -> None:
    constants = {
        name: value
        for name, value in vars(environment).items()
        if isinstance(value, environment.Variable)
    }
    assert all(name == variable.name for name, variable in constants.items())
    assert list(constants.values()) == list(VARIABLES)


def test_the_docs_table_is_the_registry() -> None:
    document = DOCS.read_text(encoding="utf-8")
    assert with_table(document) == document, (
        "docs/operators/configuration.md's environment table differs from rex/environment.py: run "
        "python -m rex.environment --update docs/operators/configuration.md"
    )
    assert all(f"| `{v.name}` |" in document for v in VARIABLES)


def test_update_rewrites_the_table_between_the_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(f"intro\n{environment.TABLE_BEGIN}\n| old |\n{environment.TABLE_END}\nend\n")
    assert environment.main(["--update", str(page)]) == 0
    assert page.read_text() == (
        f"intro\n{environment.TABLE_BEGIN}\n{markdown_table()}{environment.TABLE_END}\nend\n"
    )


def _files() -> list[Path]:
    found = [p for top in SOURCES for p in (REPO / top).rglob("*") if p.suffix in {".py", ".sh"}]
    found += [REPO / n for n in ("Makefile", "Dockerfile", "docker-compose.yml", "README.md")]
    return found + sorted((REPO / "docs").rglob("*.md"))


def test_every_rex_variable_the_tree_names_is_in_the_registry() -> None:
    known = {v.name for v in VARIABLES}
    named = {
        (token, path.relative_to(REPO).as_posix())
        for path in _files()
        for token in re.findall(r"\bREX_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8"))
        if not token.startswith("REX_PW_")  # members' passwords: named by members.toml
    }
    assert sorted(n for n in named if n[0] not in known) == []


def test_no_reader_goes_around_the_registry() -> None:
    around = re.compile(r"""(environ\.get\(|environ\[|getenv\()\s*["']REX_""")
    paths = [p for p in _files() if p.suffix == ".py"] + list((REPO / "tests").rglob("*.py"))
    offenders = [p.relative_to(REPO).as_posix() for p in paths if around.search(p.read_text())]
    assert offenders == []
