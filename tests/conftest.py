"""pytest configuration: the shared helpers are in the tests/helpers package."""
