"""cesi-like: a supervisord-compatible agent and a central console for many hosts."""

__version__ = "0.1.0"
