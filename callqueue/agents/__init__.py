"""Who the agents are: their accounts (SQL) and logins."""
