"""The django-docker policy pack: `pulumi preview --policy-pack policy`.

The Pulumi CLI runs this directory as a program (runpy on the directory puts it
on sys.path), so the rules module is imported by its plain name. The rules and
their enforcement levels live in docker_rules.py.
"""

from docker_rules import POLICIES
from pulumi_policy import PolicyPack

PolicyPack(
    name="django-docker",
    policies=POLICIES,
)
