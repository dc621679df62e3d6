"""The emulation of `pulumi up`: what the Pulumi engine and the docker provider would do.

model.py (pure: state + plan -> steps, the upstream rules cited), translate.py (pure: pulumi-docker
inputs -> Docker SDK arguments), engine.py (the one module that carries steps out on a Docker
engine, as the provider would), readback.py (what the provider's Read would bring back).
Where a real Pulumi CLI is at hand, runners can drive it instead (docs/rehearsal.md).
"""
