"""Supervisor's XML-RPC protocol, shared by the agent, cesi-agentctl and the console: states and
fault codes (`states`), hardened XML parsing (`wire`), the stdlib client for unix and TCP server
URLs (`xmlrpc_client`), and the console's node client on `requests` (`node`).

Kept import-free so the agent pays only for the modules it uses.
"""
