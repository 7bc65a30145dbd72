"""Batch messages to a segment: queueing (queue.py), the OA fan-out (fanout.py), collecting WeCom's results
with reminders and the SDR fallback (collect.py), run by the cluster job "batch_messages" (job.py)."""
