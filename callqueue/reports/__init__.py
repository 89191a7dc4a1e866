"""What supervisors read: statistics (live from Redis counters, or from SQL records) and a day per 15 minutes."""
