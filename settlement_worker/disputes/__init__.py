"""Disputes on trades and bills: the rules, and resolving them in the store."""
