"""Nurture journeys, decided purely: what a journey is (definition), where an enrolled lead goes next (machine),
whether a message may go out now (policy) and whether an event enrols a lead (enrolment, triggers).

Nothing here reads a clock, a database or the network: callers pass the lead's facts and ``now``. Storage keeps
the enrolments and bot jobs execute what these functions return.
"""
