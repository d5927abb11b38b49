"""Test helpers, one home each: real daemons (`daemons`), the console served by gunicorn
(`served`), hostile nodes (`hostile`), PostgreSQL (`postgres`), /proc (`procfs`), a TLS proxy
(`tlsproxy`), a fake process host (`fakehost`), and the test programs (`programs/`)."""
