"""Logic: accounts, groups, and the message pipeline from uplink to commit to downlink."""
