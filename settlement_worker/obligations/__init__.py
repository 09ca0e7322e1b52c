"""What a trade obliges: the buyer owes the seller the trade value; the exchange's fees."""
