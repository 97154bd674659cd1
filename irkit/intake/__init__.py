"""Alert intake: `irkit listen` receives Alertmanager's webhook, keeps each notification on disk
before it answers, and turns it into an incident whose triage and section notebooks have run by
the time a person opens the page."""
