"""The voice menu: its tree, prompts and the rules for moving through it."""
