"""The send form's body: what `POST /api/send` accepts (the event is built by wire.event_form)."""

from __future__ import annotations

from kit.api import BodySchema

SEND_FORM = BodySchema(
    {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "minLength": 1},
            "source": {"type": "string"},
            "id": {"type": "string"},
            "subject": {"type": "string"},
            "datacontenttype": {"type": "string"},
            # The data as typed: JSON text for a JSON content type, any text otherwise.
            "data": {"type": "string"},
            "extensions": {
                "type": "object",
                "additionalProperties": {"type": ["string", "integer", "boolean"]},
            },
            "mode": {"enum": ["binary", "structured"]},
        },
        "additionalProperties": False,
    },
    free_text=["data"],
)
