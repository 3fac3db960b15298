"""Campaigns: templates, contacts, audiences, consent, quiet hours, scheduled runs."""
