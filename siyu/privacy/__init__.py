"""Subject rights (PIPL articles 45 and 47): export everything kept about a person, and erase it.

Both write an audit entry that names only the super ID, the actor and the counts.
"""
