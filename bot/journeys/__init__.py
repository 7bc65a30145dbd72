"""Nurture journeys at run time: enrolment from the domain events, the due-step executor, the dormant-lead sweep.

What happens is decided in leads/journeys (pure); what is stored lives in storage/repos/journey_*.py.
"""
