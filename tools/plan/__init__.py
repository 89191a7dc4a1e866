"""`hotline simulate` and `hotline plan`: a day of calls under three policies, agents per quarter hour, charts."""
