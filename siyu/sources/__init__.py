"""Sources: the touchpoints that send events (website, mini program, store, CRM, ...) and their write keys."""
