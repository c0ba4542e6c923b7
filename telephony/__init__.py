"""The phone side: SIP endpoint, calls, the voice loop, campaigns, and the `employai` CLI."""
