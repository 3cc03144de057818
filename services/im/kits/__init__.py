"""Small data structures with no I/O and no imports from the rest of `im`."""
