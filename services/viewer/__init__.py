"""The event viewer: live events, timelines, topology, a send form and dead letters."""
