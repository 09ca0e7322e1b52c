"""Electronic acceptance bills: the rules, discounting, holidays, postings, rows and operations."""
