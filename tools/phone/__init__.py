"""`hotline call` and `hotline agent`: a telephone and an agent in the terminal, through the offline simulator."""
