"""Statistics: live figures from Redis counters, the same from SQL records, and a day's history."""
