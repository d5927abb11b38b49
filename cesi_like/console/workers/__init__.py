"""Background work of a console process: the poller, the job runner, alert delivery."""
