"""Agents' and supervisors' edge: the JSON API, the agent console and the supervisor dashboard."""
