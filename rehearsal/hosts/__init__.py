"""Docker hosts other than the main engine, private to a run: a second engine in swarm mode
(swarm_engine.py)."""
