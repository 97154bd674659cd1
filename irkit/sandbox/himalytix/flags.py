"""Feature flags the app reads from its cache. Kept apart from the views so the drills can name them
without loading Django."""

# Set by the error-spike drill: a half-finished feature switched on in production.
LEDGER_V2_FLAG = "feature:ledger_v2"
