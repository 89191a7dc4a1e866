"""Answers when a store is down: from the other store, or from none, never a 500."""
