"""The checks: what must hold of a running stack, each one line.

smoke.py (through nginx), tls.py (HTTPS end to end), day2.py (the operator's commands),
load.py (the bounded loopback load a release or fault runs under).
"""
