"""Each process's lines behind its aligned name; colour on a terminal only."""

from __future__ import annotations

import io

from shop.runner.console import Console


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
