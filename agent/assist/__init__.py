"""Live assist for agent-handled calls: suggestions, compliance and customer-mood alerts, post-call summaries."""
