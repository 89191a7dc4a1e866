"""What is not the running service: the bench, the terminal phone and agent, the staffing plan's charts."""
