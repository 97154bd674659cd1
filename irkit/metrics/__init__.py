"""The monthly incident analysis (design §5): the incident records read into one table, and the
runbook's "Metrics to Track" computed from it with pandas."""
