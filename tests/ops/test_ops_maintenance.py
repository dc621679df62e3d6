"""`make maintenance STACK=... on|off`: the command line, and its refusals before anything is
switched (the switch itself: tests/components/test_nginx_site.py, on a real nginx)."""

import pytest

from ops.__main__ import main, parser


def test_the_state_is_on_off_or_status():
    args = parser().parse_args(["maintenance", "prod", "on"])
    assert (args.command, args.stack, args.state) == ("maintenance", "prod", "on")
    with pytest.raises(SystemExit):
        parser().parse_args(["maintenance", "prod", "maybe"])


def test_an_unknown_stack_is_one_line(capsys):
    assert main(["maintenance", "nope", "on"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ops maintenance: unknown stack 'nope'")
