"""The demo plays its whole script as written, on the embedded exchange."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from demo.play import play
from demo.venues import EmbeddedVenue
from rex.config import Settings


def summary_of(output: str) -> str:
    return output[output.index("\nTrades") :]


def run_embedded() -> tuple[int, str]:
    settings = Settings.from_env({})
    out = io.StringIO()
    venue = EmbeddedVenue(settings.products(), settings.members(), Path(tempfile.mkdtemp()))
    surprises = play(venue, settings.products(), out)
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
