"""The per-host agent: reads supervisord.conf, runs its programs, speaks Supervisor's XML-RPC."""
