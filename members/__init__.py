"""Members: who is calling, their tier, and PIN verification with lockout."""
