"""One benchmark run: its configuration, partial folder, units, publication and executors."""
