"""Questions the mailing rules ask the event store: which contacts did a named event, and when."""
