"""The settlement request desk: members' (and operators') requests in, one answer each."""
