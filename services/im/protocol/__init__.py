"""The client protocol without I/O: frames, validation, limits, tokens and errors."""
