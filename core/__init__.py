"""The foundation every layer stands on: configuration, SQL and Redis connections, Redis key names, logs,
secrets' hashes, metrics, job names."""
