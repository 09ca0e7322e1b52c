"""Offline (negotiated) trades: reported by both sides, confirmed, booked like any trade."""
