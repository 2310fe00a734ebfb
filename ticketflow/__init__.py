"""The `ticketflow` command: the local developer tool (run, demo, status, token, mail); no service imports it."""
