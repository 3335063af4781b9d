"""Alerts raised by detective controls: recorded through the guard, sent to a webhook."""
