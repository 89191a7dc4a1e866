"""Hotline: foundation (config, stores) and composition (app factory, CLI, worker)."""
