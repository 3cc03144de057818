"""Gateway: holds client connections (HTTP + WebSocket) and nothing else."""
