"""Booking a trade: its obligation, plan, bills, payments, entries and events, in one
transaction."""
