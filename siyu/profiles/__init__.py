"""Profiles (用户画像): what Siyu knows about each person of the One ID graph.

Traits (`traits`, stored per person with a merge strategy and where each value came from) are kept
in step with the identity graph by `listener.ProfileListener`; computed attributes and the timeline
are read at query time from the event store through the stitcher's `event_persons` table; the data
map (`datamap`) answers "how many users do I really have, and where?".
"""
