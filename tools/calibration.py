"""A real-engine run's records -> a calibration fixture: python -m tools.calibration RECORD FIXTURE --docker VERSION ...

RECORD is what `python -m rehearsal release STACK --engine pulumi --record RECORD` (or `swarm
STACK --engine pulumi --record RECORD`, the swarm rehearsal's, whose scenarios are its own)
wrote: every `pulumi up` of the run (the boot's, then each scenario's) with the steps the engine
took. The
fixture (tests/calibration/<name>.json, read by tests/calibration/test_calibration.py) is the same
data, each up labelled (`boot`, `<scenario> up <n>`, in the order the scenarios ran), with the
date and the versions of the engine and providers that ran, which the CLI cannot tell itself
(the state records the plugin version the SDK asked for, not the one that ran).

Refused: a record holding anything that looks like a secret (the run's passphrase and registry
password are never written to it, and no resource value is; this checks that it stays so), and
a record whose ups do not add up to the scenarios it ran.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from pathlib import Path
from typing import Optional

from rehearsal.scenarios import all_scenarios

# What a secret would look like in a record: Pulumi's ciphertext marker, a `secure:` config value,
# a PEM block, a password-ish key.
SECRET_PATTERNS = (
    re.compile(r"4dabf18193072939515e22adb298388d"),
    re.compile(r"\bsecure\b"),
    re.compile(r"-----BEGIN"),
    re.compile(r"v1:[A-Za-z0-9+/=]{8,}:"),
)


class CalibrationError(Exception):
    """The record cannot become a fixture; one line."""


def known_scenarios(rehearsal: str = "release") -> list:
    """The scenarios a rehearsal runs: the release rehearsal's, or the swarm rehearsal's."""
    if rehearsal == "swarm":
        from rehearsal.runners.swarm import SCENARIOS

        return list(SCENARIOS)
    return all_scenarios()


def labels(scenarios: list[str], ups: int, rehearsal: str = "release") -> list[str]:
    """`boot`, then `<scenario> up <n>` for each up of each scenario run, in order."""
    by_name = {s.name: s for s in known_scenarios(rehearsal)}
    unknown = [n for n in scenarios if n not in by_name]
    if unknown:
        raise CalibrationError(f"the record names scenarios this checkout does not have: {unknown}")
    names = ["boot"] + [f"{n} up {i}" for n in scenarios for i in range(1, len(by_name[n].ups) + 1)]
    if ups > len(names):
        raise CalibrationError(f"the record has {ups} ups, more than its scenarios make ({len(names)})")
    return names[:ups]


def fixture(record: dict, *, engine: dict[str, str], date: Optional[str] = None) -> dict:
    text = json.dumps(record)
    for pattern in SECRET_PATTERNS:
        if pattern.search(text):
            raise CalibrationError(f"the record holds something that looks like a secret ({pattern.pattern})")
    rehearsal = record.get("rehearsal", "release")
    ran = record.get("scenarios")
    if ran is None:  # a record from before it named them: every scenario ran, in the fixed order
        ran = [s.name for s in known_scenarios(rehearsal)]
    names = labels(ran, len(record["ups"]), rehearsal)
    return {
        "stack": record["stack"],
        **({"rehearsal": rehearsal} if rehearsal != "release" else {}),
        "date": date or datetime.date.today().isoformat(),
        "engine": {"pulumi": record.get("version", ""), **engine},
        "ups": [{"label": name, **up} for name, up in zip(names, record["ups"])],
        # After the last scenario's refresh: each container's (service's, network's, config's,
        # secret's) inspect fields and the real Read.
        "readback": record.get("readback") or [],
    }


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.calibration", description=__doc__.split("\n\n")[0])
    parser.add_argument("record", type=Path)
    parser.add_argument("fixture", type=Path)
    parser.add_argument("--docker", required=True, help="pulumi-resource-docker version that ran (and its commit)")
    parser.add_argument("--random", default="", help="pulumi-resource-random version that ran")
    parser.add_argument("--language", default="", help="pulumi-language-python version that ran")
    parser.add_argument("--date", help="the run's date (default: today)")
    args = parser.parse_args(argv)
    try:
        result = fixture(
            json.loads(args.record.read_text()),
            engine={"docker": args.docker, "random": args.random, "language-python": args.language},
            date=args.date,
        )
    except (CalibrationError, ValueError, KeyError) as error:
        print(f"calibration: {error}", file=sys.stderr)
        return 1
    args.fixture.write_text(json.dumps(result, indent=1) + "\n")
    print(f"calibration: {len(result['ups'])} ups of {result['stack']} -> {args.fixture}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
