"""ticketflow's plumbing and contracts that the services share at run time; the developer tool is ticketflow/."""
