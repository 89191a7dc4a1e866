"""After a store outage: each store rebuilt from the other, and what Redis kept for SQL."""
