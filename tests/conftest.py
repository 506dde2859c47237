"""pytest configuration: the shared helpers are in tests/helpers.py."""
