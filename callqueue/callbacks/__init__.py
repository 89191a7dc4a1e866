"""Callback tickets: the durable promise in SQL, and whose turn it is to be called back."""
