"""Payments through banks: the state machine, what a paid payment posts, its rows, the payer."""
