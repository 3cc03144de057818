"""Entry points: wire configuration, backends and roles into runnable processes."""
