"""Short links: entity, validation, slugs, rules and the link service."""
