"""The daemon: its composition root, scheduler jobs, leadership, sd_notify, HTTP, metrics, logging."""
