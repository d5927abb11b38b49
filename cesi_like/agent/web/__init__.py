"""The agent's HTTP side: `listen` binds the sockets (before the daemon forks, without the
HTTP stack), `server` speaks HTTP/1.1 on them, `routes` sends each request to XML-RPC, a log
stream or the status `page`."""
