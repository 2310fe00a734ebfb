"""ticketflow's common plumbing: configuration, events, bus, storage, web, auth."""
