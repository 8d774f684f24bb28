"""Looking at a running shop from the CLI: endpoints, the viewer's stream, dead letters, status.

`shop send`, `shop tail`, `shop topology`, `shop deadletters` and `shop status` are thin
argument parsers over these modules, which they import only when they run.
"""

from pathlib import Path

DEFAULT_STATE_DIR = Path(".shop")
