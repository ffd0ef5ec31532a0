"""Typed data shared by the services: inventory, desired and observed objects, changes."""
