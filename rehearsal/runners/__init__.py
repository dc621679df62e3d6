"""The runners: boot a stack and take it through releases, faults, TLS or swarm, one phase line each.

session.py (one rehearsed stack across several `pulumi up`s), stacks.py (plan a stack for its
rehearsal), release.py (boot, release scenarios under load), faults.py, swarm.py.
"""
