"""Members' payment methods and receipt limits as changed at run time, and their requests."""
