"""The holiday calendar file and its strict loader."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from rex.config import ConfigError
from settlement_worker.bills.holidays import load_calendar

SHIPPED = Path(__file__).resolve().parents[3] / "config" / "holidays.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "holidays.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_holiday_calendar_loads() -> None:
    calendar = load_calendar(SHIPPED)
    assert not calendar.is_business_day(date(2026, 10, 1))  # National Day
    assert not calendar.is_business_day(date(2026, 2, 17))  # Spring Festival
    assert calendar.is_business_day(date(2026, 2, 14))  # Saturday make-up workday
    assert calendar.roll_forward(date(2026, 10, 1)) == date(2026, 10, 8)
    assert not calendar.is_business_day(date(2027, 10, 4))
    for year in (2026, 2027):
        assert date(year, 1, 1) in calendar.holidays
        assert date(year, 5, 1) in calendar.holidays


def test_single_days_ranges_workdays_and_string_dates(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        weekend = [5, 6]
        [[holidays]]
        name = "A"
        date = 2026-06-19
        [[holidays]]
        name = "B"
        first = "2026-10-01"
        last = 2026-10-03
        [[workdays]]
        name = "C"
        date = "2026-10-10"
        """,
    )
    calendar = load_calendar(path)
    assert calendar.holidays == {date(2026, 6, 19), *(date(2026, 10, d) for d in (1, 2, 3))}
    assert calendar.workdays == {date(2026, 10, 10)}


def test_bad_date_is_rejected_naming_file_and_entry(tmp_path: Path) -> None:
    path = write(tmp_path, '[[holidays]]\nname = "Leap?"\ndate = "2026-02-29"\n')
    with pytest.raises(ConfigError) as exc:
        load_calendar(path)
    message = str(exc.value)
    assert str(path) in message
    assert "holiday #1 ('Leap?')" in message
    assert "field 'date'" in message
    assert exc.value.entry == "holiday #1 ('Leap?')"


def test_impossible_toml_date_is_rejected_naming_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[[holidays]]\nname = "X"\ndate = 2026-02-30\n')
    with pytest.raises(ConfigError) as exc:
        load_calendar(path)
    assert str(path) in str(exc.value)
    assert "line 3" in str(exc.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[[holidays]]\nname = "X"\nday = 2026-01-01\n', "unknown key"),
        ("[[holidays]]\ndate = 2026-01-01\n", "field 'name'"),
        ('[[holidays]]\nname = "X"\nfirst = 2026-01-03\nlast = 2026-01-01\n', "before first"),
        ('[[holidays]]\nname = "X"\nfirst = 2026-01-01\nlast = 2027-01-01\n', "longer than"),
        ('[[holidays]]\nname = "X"\nfirst = 2026-01-01\n', "both 'first' and 'last'"),
        ('[[holidays]]\nname = "X"\ndate = 2026-01-01T09:00:00\n', "without a time"),
        ('[[holidays]]\nname = "X"\ndate = "1 Jan 2026"\n', "YYYY-MM-DD"),
        (
            '[[holidays]]\nname = "X"\ndate = 2026-01-01\n'
            '[[holidays]]\nname = "Y"\nfirst = 2025-12-31\nlast = 2026-01-02\n',
            "already listed by holiday #1 ('X')",
        ),
        (
            '[[holidays]]\nname = "X"\ndate = 2026-01-01\n'
            '[[workdays]]\nname = "W"\ndate = 2026-01-05\n',
            "Monday, already a working day",
        ),
        (
            '[[holidays]]\nname = "X"\ndate = 2026-01-03\n'
            '[[workdays]]\nname = "W"\ndate = 2026-01-03\n',
            "also a holiday",
        ),
        ('weekend = [5, 9]\n[[holidays]]\nname = "X"\ndate = 2026-01-01\n', "weekday numbers"),
        ("holiday = []\n", "unknown top-level key"),
        ("weekend = [5, 6]\n", "no [[holidays]]"),
        ("holidays = 3\n", "array of tables"),
    ],
)
def test_bad_calendar_entries_are_rejected(tmp_path: Path, body: str, expected: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as exc:
        load_calendar(path)
    assert expected in str(exc.value)
    assert str(path) in str(exc.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_calendar(tmp_path / "nope.toml")
