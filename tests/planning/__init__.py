"""The day simulation and the staffing plan on the real queue code."""
