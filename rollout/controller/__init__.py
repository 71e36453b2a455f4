"""Wiring: reconcile(key) = read state -> engine.decide -> apply actions."""
