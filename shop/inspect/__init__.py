"""Looking at a running shop from the CLI: endpoints, the viewer's stream, dead letters, status.

`shop send`, `shop tail`, `shop topology`, `shop deadletters` and `shop status` are thin
argument parsers over these modules, which they import only when they run.
"""

from pathlib import Path

DEFAULT_STATE_DIR = Path(".shop")


class NotRunning(Exception):
    """No `shop up` to talk to, and no URL given instead; the message says what to do.

    Defined here, away from the modules that need the network, so that shop/cli.py catches it
    for every command without importing them.
    """
