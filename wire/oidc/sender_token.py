"""The token a producer sends with its events: the file Knative mounts for a SinkBinding's subject.

Knative renews the token before it expires and the kubelet replaces the file; `shop up` does the
same locally (shop/identity/token_files.py). The file is therefore read for every send, never
kept. Without the file there is no token to send, and the sink decides whether that will do.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Where Knative mounts a SinkBinding subject's token (OIDC_TOKEN_FILE overrides it).
DEFAULT_TOKEN_FILE = "/oidc/token"


def bearer_headers(token_file: str | os.PathLike[str] | None) -> dict[str, str]:
    """`{"Authorization": "Bearer <token>"}` from `token_file`; `{}` when there is no such file.

    Raises OSError when the file is there but cannot be read, or holds no token: sending without
    the token would only be refused for good (401), which a retry later can avoid.
    """
    if token_file is None:
        return {}
    path = Path(token_file)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError as error:
        raise OSError(f"the token file {path} is not text: {error}") from error
    if not token:
        raise OSError(f"the token file {path} is empty")
    return {"Authorization": f"Bearer {token}"}
