"""The live queue in Redis: ordering, dispatch, agents' presence, the holding pen, the wait estimate and the Lua scripts."""
