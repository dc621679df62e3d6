"""Docker hosts other than the main engine, private to a run: a second engine
(private_engine.py) in swarm mode (swarm_engine.py), or reached over ssh and TCP+TLS
(remote_host.py, with ssh_host.py and tls_material.py)."""
