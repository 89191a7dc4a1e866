"""The agent queue: ordering, dispatch, agents' presence, hours, callbacks and statistics."""
