"""The hand-off of MQLs to sales: routing on the domain-event seam, the WeCom cards, the CRM webhook, the SLA.

Subscribers live here (they may enqueue outbox rows); what they decide is leads/, what they write storage/.
"""
