"""The demo plays its whole script as written, on the embedded exchange."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest

import demo.__main__
from demo.__main__ import main as demo_main
from demo.play import play
from demo.venues import EmbeddedVenue, Venue
from rex.config import ProcessConfig


def summary_of(output: str) -> str:
    return output[output.index("\nTrades") :]


def run_embedded() -> tuple[int, str]:
    process_config = ProcessConfig.from_env({})
    out = io.StringIO()
    with tempfile.TemporaryDirectory() as data:
        venue = EmbeddedVenue(process_config.products(), process_config.members(), Path(data))
        surprises = play(venue, process_config.products(), out)
    return surprises, out.getvalue()


def test_demo_session_answers_every_step_as_scripted() -> None:
    surprises, output = run_embedded()
    assert surprises == 0, output


def test_demo_summary_lists_trades_books_and_positions() -> None:
    _, output = run_embedded()
    summary = summary_of(output)
    assert "PRND-OX-3     PRND-OX     1,000 kg     416,000  ningbo-alloy" in summary
    assert "RE-STAB    bids -" in summary and "asks 200@15,100" in summary
    assert "xinyu-pvc               +100 kg ND-OX, +300 kg RE-STAB" in summary
    assert "-46,560.00 CNY" in summary


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("REX_CONFIG_DIR", raising=False)
    monkeypatch.setenv("REX_DATA_DIR", str(tmp_path))
    return tmp_path


def test_the_embedded_demo_leaves_nothing_in_the_data_dir(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert demo_main([]) == 0
    assert list(data_dir.iterdir()) == []


def test_an_interrupted_demo_removes_its_data_dir_too(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[Path] = []

    def interrupted(venue: Venue, products: object) -> int:
        seen.extend(data_dir.glob("demo-*"))
        assert len(seen) == 1 and (seen[0] / "gateway.sqlite3").exists()
        raise KeyboardInterrupt

    monkeypatch.setattr(demo.__main__, "play", interrupted)
    try:
        status = demo_main([])
    except KeyboardInterrupt:  # not pytest's own: fail this test, not the run
        pytest.fail("the demo let Ctrl-C escape")
    assert status == 130
    assert seen and list(data_dir.iterdir()) == []
    assert capsys.readouterr().err == "\ndemo: interrupted; what it set up has been removed\n"


def test_a_demo_that_fails_removes_its_data_dir(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(venue: Venue, products: object) -> int:
        raise RuntimeError("the venue broke")

    monkeypatch.setattr(demo.__main__, "play", failing)
    with pytest.raises(RuntimeError, match="the venue broke"):
        demo_main([])
    assert list(data_dir.iterdir()) == []
