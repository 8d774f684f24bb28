"""The customer service's event handlers: none, it consumes no events (it only produces)."""

from __future__ import annotations

from kit import HandlerSet

handlers = HandlerSet()
