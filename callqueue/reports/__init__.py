"""What supervisors read: the statistics (live from Redis counters, the same from SQL records) and a day's history per 15 minutes."""
