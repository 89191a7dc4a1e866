"""The live queue in Redis: order, dispatch and its trigger, agents' presence, the holding pen, wait estimate, Lua."""
