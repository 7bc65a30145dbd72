"""SDR tasks beyond the console: due-time reminders to the member's WeCom (the job ``task_reminders``)."""
