"""Release scenarios: one small module each, data plus an expectation.

The types and pure parts are in `scenario.py`; each scenario is a module of its own, which imports
them from there (never from this package: this registry imports the scenarios).
"""

from rehearsal.scenarios.scenario import (
    Scenario,
    ScenarioFailed,
    Up,
    expect,
)

__all__ = ["Scenario", "ScenarioFailed", "Up", "all_scenarios", "expect"]


def all_scenarios() -> list[Scenario]:
    from rehearsal.scenarios import (
        expand_contract,
        failed_backup,
        failed_migration,
        healthcheck,
        incompatible_migration,
        maintenance_migration,
        memory,
        new_commit,
        nginx_config,
        promote,
        scale_down,
        scale_up,
        unhealthy_release,
    )

    return [
        m.SCENARIO
        for m in (
            new_commit,
            promote,
            scale_up,
            scale_down,
            memory,
            healthcheck,
            nginx_config,
            failed_backup,
            failed_migration,
            unhealthy_release,
            # Last: they change the example's table (columns the releases above read are dropped).
            incompatible_migration,
            expand_contract,
            maintenance_migration,
        )
    ]
