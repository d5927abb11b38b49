"""`cesi-agentctl`: supervisorctl's commands, output and exit codes, over XML-RPC to a
cesi-agentd or a supervisord. `cli` parses the command line and runs the shell; the commands
live in `processes`, `logs` and `groups` on top of `base`; `stream` follows logs."""
