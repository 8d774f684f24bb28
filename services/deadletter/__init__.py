"""The dead-letter sink: keeps every event the broker could not deliver, and redelivers it."""
