"""Batch messages to a segment (pure): exclusion reasons and outcomes, the customer's receive limit per period,
chunks of ≤ 10,000 customers per member, personalisation, and when to remind a member or hand over to an SDR.

WeCom facts (DOMAIN.md): a mass message (``add_msg_template``) is a task the member confirms in their client;
≤ 10,000 customers per call; each customer receives about one a day (as many a month as the month has days, or
the admin's 7 a week / 1 a day); results by ``get_groupmsg_task`` / ``get_groupmsg_send_result``;
``remind_groupmsg_send`` at most 3 times per message per 24 hours.
"""
