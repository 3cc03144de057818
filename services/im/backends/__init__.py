"""Backends behind three small interfaces (`im.backends.base`); only this package talks to servers."""
