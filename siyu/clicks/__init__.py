"""Click capture: the in-process batch queue and enrichment into the event store."""
