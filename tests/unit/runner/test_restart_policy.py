"""Back-off between restarts of a process that dies, and how an exit is described."""

from __future__ import annotations

import signal

import pytest

from shop.runner.supervisor import RestartPolicy, describe_exit


def test_restarts_back_off_doubling_from_one_second_up_to_the_cap() -> None:
    policy = RestartPolicy(first=1.0, cap=30.0)

    assert [policy.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


@pytest.mark.parametrize(
    ("returncode", "text"),
    [
        (0, "exited with status 0"),
        (3, "exited with status 3"),
        (-signal.SIGKILL, "was killed by SIGKILL"),
        (-signal.SIGTERM, "was killed by SIGTERM"),
    ],
)
def test_an_exit_is_described_by_status_or_signal(returncode: int, text: str) -> None:
    assert describe_exit(returncode) == text
