"""Outbound call campaigns: a contact list, a goal, pacing, calling hours, retries, resumable."""
