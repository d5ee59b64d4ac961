"""Background jobs: one leader runs them (in the API process, or as `broadcast scheduler`)."""
