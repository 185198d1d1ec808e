"""Turning a JobSpec into running tasks: plan, supervisor, launchers, manifests."""
