"""The agent's XML-RPC interface: `dispatch` parses calls, answers faults and the `system.*`
methods; `namespace` is Supervisor's `supervisor.*` (with `logs` and `base`), `cesi` the
agent's own unlisted `cesi.*`."""
