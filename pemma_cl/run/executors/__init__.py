"""Where a run's units execute: worker processes (fork server) or a Ray cluster."""
