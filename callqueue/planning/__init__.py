"""The day simulation and the staffing plan: profiles, policies, Erlang C."""
