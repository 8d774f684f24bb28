"""Each process's lines behind its aligned name; colour on a terminal only; log records short."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from shop.cli import main
from shop.runner.config import UpConfig
from shop.runner.console import Console, LogEcho


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_process_lines_are_prefixed_with_names_padded_to_the_longest() -> None:
    stream = io.StringIO()
    console = Console.for_stream(stream, {})
    console.align(["broker", "notification", "smtp"])

    console.line("broker", "listening")
    console.line("notification", "sent")
    console.status("ready")

    assert stream.getvalue().splitlines() == [
        "broker       | listening",
        "notification | sent",
        "shop up: ready",
    ]


def test_colour_is_used_on_a_terminal_only() -> None:
    piped, terminal = io.StringIO(), _Terminal()
    for stream in (piped, terminal):
        console = Console.for_stream(stream, {})
        console.align(["order"])
        console.line("order", "hello")

    assert "\033[" not in piped.getvalue()
    assert terminal.getvalue().startswith("\033[36morder\033[0m | hello")


def test_no_color_turns_colour_off_even_on_a_terminal() -> None:
    terminal = _Terminal()
    console = Console.for_stream(terminal, {"NO_COLOR": "1"})

    console.line("order", "hello")

    assert terminal.getvalue() == "order | hello\n"


def test_a_closed_reader_does_not_stop_the_console() -> None:
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    console = Console(Closed(), colour=False)

    console.line("order", "one")
    console.status("two")  # no exception: the processes keep running until stopped


def _record(level: str, message: str, **fields: object) -> str:
    return json.dumps(
        {"time": "2024-05-01T12:00:01.250+00:00", "level": level, "logger": "x", "message": message}
        | fields
    )


def _local_clock() -> str:
    return datetime(2024, 5, 1, 12, 0, 1, tzinfo=UTC).astimezone().strftime("%H:%M:%S")


def test_a_warning_record_is_one_short_line_with_its_local_time_and_fields() -> None:
    stream = io.StringIO()
    console = Console(stream, colour=False, echo=LogEcho.HUMAN)
    console.align(["broker", "order"])

    console.line(
        "broker",
        _record(
            "warning",
            "delivery failed",
            type="order.created",
            trigger="payment-order-created",
            status=503,
            attempt=2,
            error="HTTP 503: busy",
            duration_ms=12.5,
            outcome="failed",
            service="broker",
        ),
    )
    console.line(
        "order", _record("error", "handler failed", exception="Traceback...\nKeyError: 'x'")
    )

    assert stream.getvalue().splitlines() == [
        f"broker | {_local_clock()} warning delivery failed  type=order.created "
        'trigger=payment-order-created status=503 attempt=2 error="HTTP 503: busy"',
        f"order  | {_local_clock()} error   handler failed  KeyError: 'x'",
    ]


def test_quiet_records_are_left_to_the_log_file_and_other_lines_are_shown_as_written() -> None:
    stream = io.StringIO()
    console = Console(stream, colour=False, echo=LogEcho.HUMAN)

    console.line("order", _record("info", "delivered", type="order.created"))
    console.line("order", _record("debug", "details"))
    console.line("order", "Traceback (most recent call last):")
    console.line("order", '{"not": "a log record"}')

    assert stream.getvalue().splitlines() == [
        "order | Traceback (most recent call last):",
        'order | {"not": "a log record"}',
    ]


def test_json_echo_shows_every_record_as_written() -> None:
    stream = io.StringIO()
    console = Console(stream, colour=False, echo=LogEcho.JSON)
    line = _record("info", "delivered")

    console.line("order", line)

    assert stream.getvalue() == f"order | {line}\n"


def test_records_are_shown_the_human_way_on_a_terminal_and_as_written_when_piped() -> None:
    assert Console.for_stream(_Terminal(), {}).echo is LogEcho.HUMAN
    assert Console.for_stream(io.StringIO(), {}).echo is LogEcho.JSON
    assert Console.for_stream(_Terminal(), {}, LogEcho.JSON).echo is LogEcho.JSON
    assert Console.for_stream(io.StringIO(), {}, LogEcho.HUMAN).echo is LogEcho.HUMAN


def test_the_level_is_coloured_on_a_terminal() -> None:
    terminal = _Terminal()
    console = Console.for_stream(terminal, {})

    console.line("order", _record("error", "boom"))

    assert f"{_local_clock()} \033[31merror\033[0m   boom" in terminal.getvalue()


def test_shop_up_log_format_chooses_how_records_are_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    chosen: list[LogEcho | None] = []

    def run(config: UpConfig, *, echo: LogEcho | None = None) -> int:
        chosen.append(echo)
        return 0

    monkeypatch.setattr("shop.runner.up.run", run)

    assert main(["up", "--log-format", "json"]) == main(["up", "--log-format", "human"]) == 0
    assert main(["up"]) == 0
    assert chosen == [LogEcho.JSON, LogEcho.HUMAN, None]  # None: by the terminal
