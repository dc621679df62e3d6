"""Every key over its whole range: unknown keys and namespaces, numbers at and past their limits,
empty and whitespace-only values, what the server behind a key refuses, keys that mean nothing
for the stack's choices, contradictions, secrets never echoed, and every problem in one run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from planning.harness import PlanError, plan_stack
from tests.program_fixtures import PROD_SECRETS, plan_prod

ROOT = Path(__file__).resolve().parents[2]


def refused(stack: str = "dev", **kwargs) -> list[str]:
    """The program's refusal of this config: its lines (one per problem)."""
    with pytest.raises(PlanError) as error:
        if stack == "prod":
            plan_prod(**kwargs)
        else:
            plan_stack(stack, **kwargs)
    return str(error.value).splitlines()


# --- unknown keys and namespaces -------------------------------------------------------------

UNKNOWN_KEYS: list[tuple[dict[str, object], str]] = [
    (
        {"django-docker:webReplica": 5},
        "django-docker:webReplica: unknown key; did you mean django-docker:webReplicas? "
        "(docs/configuration.md lists every key)",
    ),
    (
        {"django-docker:healthCheckInterval": "5s"},
        "django-docker:healthCheckInterval: unknown key; did you mean django-docker:healthcheckInterval? "
        "(docs/configuration.md lists every key)",
    ),
    (
        {"django_docker:webReplicas": 3},
        "django_docker:webReplicas: unknown namespace 'django_docker'; did you mean django-docker:webReplicas?",
    ),
    (
        {"djang-docker:webReplica": 3},
        "djang-docker:webReplica: unknown namespace 'djang-docker'; did you mean django-docker:webReplicas?",
    ),
    ({"docker:hots": "ssh://deploy@host"}, "docker:hots: unknown key; did you mean docker:host?"),
    ({"dokcer:host": "ssh://deploy@host"}, "dokcer:host: unknown namespace 'dokcer'; did you mean docker:host?"),
    (
        {"aws:region": "eu-west-1"},
        "aws:region: unknown namespace 'aws'; this project reads django-docker:, docker: and pulumi: keys",
    ),
]


@pytest.mark.parametrize("overrides, message", UNKNOWN_KEYS, ids=[next(iter(o)) for o, _ in UNKNOWN_KEYS])
def test_an_unknown_key_is_refused_with_the_key_it_meant(overrides, message):
    assert refused(overrides=overrides) == [message]


def test_a_misspelled_secret_is_refused_without_its_value():
    lines = refused(secrets={"tlsCertficate": "-----BEGIN CERTIFICATE-----\nc2VjcmV0LWJvZHk=\n"})
    assert lines == [
        "django-docker:tlsCertficate: unknown key; did you mean django-docker:tlsCertificate? "
        "(docs/configuration.md lists every key)"
    ]


def test_keys_of_pulumi_and_the_docker_provider_pass():
    plan = plan_stack(
        "dev",
        overrides={
            "pulumi:tags": '{"team": "web"}',
            "docker:host": "ssh://deploy@docker.example.com",
            "docker:sshOpts": '["-o", "Port=22"]',
        },
    )
    assert plan.outputs["url"] == "http://localhost:8080/"


def test_a_key_added_to_pulumi_yaml_is_known_at_once(tmp_path):
    """The one list is Pulumi.yaml: a new key (the lead's app keys) needs no change here."""
    from components.settings import keys

    text = (
        (ROOT / "Pulumi.yaml")
        .read_text()
        .replace(
            "config:\n", "config:\n  buildContext:\n    type: string\n    default: django_app\n    description: x\n", 1
        )
    )
    (tmp_path / "Pulumi.yaml").write_text(text)
    project = keys.project(tmp_path)
    assert project.keys["buildContext"].default_text == "django_app"
    assert keys.unknown_key_problems(["django-docker:buildContext"], project, ()) == []
    assert keys.unknown_key_problems(["django-docker:buildContxt"], project, ()) == [
        "django-docker:buildContxt: unknown key; did you mean django-docker:buildContext? "
        "(docs/configuration.md lists every key)"
    ]


def test_the_docker_providers_keys_come_from_its_sdk():
    from components.settings import keys

    assert {"host", "registryAuth", "caMaterial", "certMaterial", "keyMaterial", "sshOpts"} <= set(
        keys.docker_provider_keys()
    )


def test_an_unknown_key_is_refused_before_anything_is_created(monkeypatch):
    from planning import harness

    registered: list[str] = []
    original = harness._RecordingMonitor.RegisterResource

    def spy(self, request):
        if request.type != "pulumi:pulumi:Stack":
            registered.append(request.type)
        return original(self, request)

    monkeypatch.setattr(harness._RecordingMonitor, "RegisterResource", spy)
    with pytest.raises(PlanError):
        plan_stack("dev", overrides={"django-docker:webReplica": 5})
    assert registered == []


# --- numbers, sizes and durations at and past their limits -----------------------------------

MEMORY = "expected a size like 512M or 1G (at least 6M)"
RANGES: list[tuple[dict[str, object], str]] = [
    ({"webReplicas": "99999999999999999999"}, "webReplicas: 99999999999999999999 is out of range; expected 1 to 50"),
    ({"webReplicas": "1_000"}, "webReplicas: '1_000' is not a whole number; expected 1 to 50"),
    ({"webReplicas": "NaN"}, "webReplicas: 'NaN' is not a whole number; expected 1 to 50"),
    ({"webReplicas": "inf"}, "webReplicas: 'inf' is not a whole number; expected 1 to 50"),
    ({"webReplicas": "2.0"}, "webReplicas: '2.0' is not a whole number; expected 1 to 50"),
    ({"webReplicas": " "}, "webReplicas: empty is not a whole number; expected 1 to 50"),
    ({"httpPort": "-1"}, "httpPort: -1 is out of range; expected 1 to 65535"),
    ({"webMemory": "nanm"}, f"webMemory: 'nanm' is not a memory limit; {MEMORY}"),
    ({"webMemory": "infg"}, f"webMemory: 'infg' is not a memory limit; {MEMORY}"),
    ({"webMemory": "1e400m"}, f"webMemory: '1e400m' is not a memory limit; {MEMORY}"),
    ({"redisMemory": ""}, f"redisMemory: '' is not a memory limit; {MEMORY}"),
    (
        {"nginxMemory": "9999999999999g"},
        "nginxMemory: '9999999999999g' is past the largest memory limit Docker takes (8E)",
    ),
    (
        {"healthcheckInterval": "0s"},
        "healthcheckInterval: '0s' is zero, which Docker reads as its default (30s); expected 1ms or more",
    ),
    (
        {"healthcheckTimeout": "0m"},
        "healthcheckTimeout: '0m' is zero, which Docker reads as its default (30s); expected 1ms or more",
    ),
    (
        {"healthcheckInterval": "2562048h"},
        "healthcheckInterval: '2562048h' is past the longest duration Go holds (2562047h47m16s)",
    ),
    (
        {"healthcheckStartPeriod": "NaNs"},
        "healthcheckStartPeriod: 'NaNs' is not valid; expected a duration like 30s or 1m30s",
    ),
    ({"healthcheckTimeout": "  "}, "healthcheckTimeout: empty is not valid; expected a duration like 30s or 1m30s"),
    ({"healthcheckRetries": 0}, "healthcheckRetries: 0 is out of range; expected 1 to 100"),
    (
        {"clientMaxBodySize": "99999999999999999999g"},
        "clientMaxBodySize: '99999999999999999999g' is past the largest size nginx holds (8E)",
    ),
    ({"djangoHstsSeconds": 63072001}, "djangoHstsSeconds: 63072001 is out of range; expected 0 to 63072000"),
    ({"backupRetention": 0}, "backupRetention: 0 is out of range; expected 1 to 1000"),
]


@pytest.mark.parametrize("overrides, message", RANGES, ids=[f"{next(iter(o))}-{i}" for i, (o, _) in enumerate(RANGES)])
def test_numbers_sizes_and_durations_past_their_range(overrides, message):
    assert refused(overrides=overrides) == [message]


def test_values_inside_the_range_are_taken():
    plan = plan_stack(
        "dev",
        overrides={
            "webMemory": "1.5g",
            "healthcheckStartPeriod": "0s",
            "clientMaxBodySize": "0",
            "webReplicas": "+3",
            "healthcheckInterval": "2562047h",
        },
    )
    web = plan.container("django-docker-web-1")
    assert web.inputs["memory"] == 1536
    assert web.inputs["healthcheck"]["startPeriod"] == "0s"
    assert web.inputs["healthcheck"]["interval"] == "2562047h0m0s"
    assert len(plan.containers("web")) == 3


def test_sizes_are_parsed_without_floats():
    from components.settings.values import memory_bytes, nginx_size_bytes

    assert memory_bytes("512M") == 512 * 1024**2
    assert memory_bytes("1.5g") == 1536 * 1024**2
    assert memory_bytes("64mb") == 64 * 1024**2
    assert memory_bytes("1048576") == 1048576
    for text in ("nanm", "NaN", "inf", "-1m", "1e3m", "1.m", "", "m"):
        assert memory_bytes(text) is None, text
    assert nginx_size_bytes("10m") == 10 * 1024**2
    assert nginx_size_bytes("0") == 0
    assert nginx_size_bytes(str(2**63 - 1)) == 2**63 - 1
    assert nginx_size_bytes(str(2**63)) is None
    assert nginx_size_bytes("1.5m") is None


def test_settings_import_no_docker_sdk():
    """Parsing a size needs no Docker SDK (its parse_bytes raised on `nanm` with a traceback)."""
    imported = set()
    for path in (ROOT / "components" / "settings").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    assert "docker" not in imported


# --- strings: empty, whitespace, what the server behind them refuses --------------------------

LABEL = "a" * 64
STRINGS: list[tuple[dict[str, object], str]] = [
    ({"serverName": "   "}, "serverName: empty; expected a host name, e.g. example.com"),
    (
        {"serverName": f"{LABEL}.example.com"},
        f"serverName: '{LABEL}.example.com' has a label of 64 characters; a DNS label has at most 63",
    ),
    (
        {"serverName": ".".join(["abcdefghi"] * 26)},
        f"serverName: '{'.'.join(['abcdefghi'] * 26)}' is 259 characters; a host name has at most 253",
    ),
    (
        {"djangoAllowedHosts": f"ok.example.com, {LABEL}.example.com"},
        f"djangoAllowedHosts: '{LABEL}.example.com' has a label of 64 characters; a DNS label has at most 63",
    ),
    ({"postgresDb": " "}, "postgresDb: empty; expected a database name (lowercase letters, digits, _), at most 63"),
    (
        {"postgresDb": "d" * 64},
        f"postgresDb: '{'d' * 64}' is not valid; expected a database name (lowercase letters, digits, _), at most 63",
    ),
    ({"postgresUser": "pg_app"}, "postgresUser: 'pg_app' is reserved: PostgreSQL role names cannot begin with \"pg_\""),
    ({"postgresUser": "public"}, "postgresUser: 'public' is reserved: PUBLIC means every role in PostgreSQL"),
    ({"postgresUser": "none"}, "postgresUser: 'none' is reserved by PostgreSQL"),
    (
        {"postgresDb": "template1"},
        "postgresDb: 'template1' is PostgreSQL's template database: the app's tables would go into every new database",
    ),
    ({"restartPolicy": " "}, "restartPolicy: empty is not one of always, unless-stopped, on-failure"),
    (
        {"frontendSubnet": "8.8.8.0/24"},
        "frontendSubnet: '8.8.8.0/24' is not a private range (it would hide those addresses from the host); "
        "expected one inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16",
    ),
    (
        {"frontendSubnet": "fd00::/64"},
        "frontendSubnet: 'fd00::/64' is IPv6; expected an IPv4 subnet like 172.30.10.0/24",
    ),
    (
        {"frontendSubnet": "172.30.10.0/29", "webReplicas": 3},
        "frontendSubnet: '172.30.10.0/29' has room for 5 containers; 3 web replicas need 7 during a release "
        "(a larger subnet, e.g. /24)",
    ),
    (
        {"backendSubnet": "172.30.10.128/25"},
        "backendSubnet: '172.30.10.128/25' overlaps frontendSubnet '172.30.10.0/24'; Docker refuses two networks "
        "on one range",
    ),
    (
        {"backendSubnet": "10.1.2.3/24"},
        "backendSubnet: '10.1.2.3/24' is not a subnet; expected CIDR like 172.30.10.0/24",
    ),
    (
        {"imageRepository": "a/" * 127 + "web"},
        "imageRepository: the image name is 257 characters; Docker takes at most 255",
    ),
    (
        {"postgresImage": "postgres:15.14-" + "x" * 130},
        "postgresImage: 'postgres:15.14-"
        + "x" * 130
        + "' is not an image reference; expected repository:tag or repository@sha256:<64 hex>",
    ),
]


@pytest.mark.parametrize(
    "overrides, message", STRINGS, ids=[f"{next(iter(o))}-{i}" for i, (o, _) in enumerate(STRINGS)]
)
def test_strings_the_server_would_refuse(overrides, message):
    assert refused(overrides=overrides) == [message]


def test_a_small_subnet_is_enough_for_few_replicas():
    plan = plan_stack("dev", overrides={"frontendSubnet": "172.30.10.0/29", "webReplicas": 2})
    assert len(plan.containers("web")) == 2


def test_a_backend_subnet_is_the_backend_network_s_with_its_gateway_stated():
    from planning.harness import NETWORK

    plan = plan_stack("dev", overrides={"backendSubnet": "10.77.0.0/24"})
    (backend,) = [r for r in plan.of_type(NETWORK) if r.name.endswith("-backend")]
    assert backend.inputs["ipamConfigs"] == [{"subnet": "10.77.0.0/24", "gateway": "10.77.0.1"}]
    assert backend.options["delete_before_replace"] is False  # a new range beside the old, then the old goes
    unset = [r for r in plan_stack("dev").of_type(NETWORK) if r.name.endswith("-backend")]
    assert "ipamConfigs" not in unset[0].inputs  # empty: Docker picks one


# A swarm runs a pushed image on every node (a local build is refused): a pinned digest.
SWARM = {
    "target": "swarm",
    "bindAddress": "0.0.0.0",
    "imageSource": "pin",
    "imagePin": "registry.example.com/acme/web@sha256:" + "a" * 64,
}
NFS = "expected an NFS export as host:/path, e.g. nfs.internal:/exports/django"


@pytest.mark.parametrize(
    "export, message",
    [
        (
            "nfs://nas.internal/exports/django",
            f"swarmSharedStorage: 'nfs://nas.internal/exports/django' is a URL; {NFS}",
        ),
        ("nas.internal:exports", f"swarmSharedStorage: 'nas.internal:exports' is not valid; {NFS}"),
        ("nas.internal://exports", f"swarmSharedStorage: 'nas.internal://exports' is a URL; {NFS}"),
        ("nas_1:/exports", f"swarmSharedStorage: 'nas_1:/exports' is not valid; {NFS}"),
        ("[fd00::1:/exports", f"swarmSharedStorage: '[fd00::1:/exports' is not valid; {NFS}"),
    ],
)
def test_an_nfs_export_written_otherwise_is_refused(export, message):
    assert refused(overrides={**SWARM, "swarmSharedStorage": export}) == [message]


def test_nfs_exports_by_name_and_address_are_taken():
    for export in ("nas.internal:/exports/django", "10.0.0.5:/srv/nfs", "[fd00::5]:/srv/nfs"):
        plan = plan_stack("dev", overrides={**SWARM, "swarmSharedStorage": export})
        assert plan.resources, export


# --- keys that mean nothing for the stack's choices, and contradictions ------------------------

DIGEST = "registry.example.com/acme/web@sha256:" + "b" * 64
CONTRADICTIONS: list[tuple[dict[str, object], str]] = [
    (
        {"imagePin": DIGEST},
        "imagePin: set, but imageSource is build, so the pin is ignored; set imageSource: pin to run it "
        "(make rollback does both), or remove imagePin",
    ),
    ({"imageSource": "pin"}, "imagePin: empty, but imageSource is pin; expected repo@sha256:<64 hex>"),
    (
        {"imageSourceStack": "organization/django-docker/dev"},
        "imageSourceStack: set, but imageSource is build, which ignores it; set imageSource: stack to promote "
        "that stack's image, or remove imageSourceStack",
    ),
    (
        {"imageRegistryUsername": "bot"},
        "imageRegistryUsername: set without imageRegistry; set imageRegistry (the server to push to) too, or remove it",
    ),
    (
        {"swarmSharedStorage": "nas.internal:/exports"},
        "swarmSharedStorage: set, but target is containers; it means something only with target: swarm",
    ),
    (
        {"swarmDataLabel": "acme.data"},
        "swarmDataLabel: set, but target is containers; it means something only with target: swarm",
    ),
    (
        {"httpsPort": 8443},
        "httpsPort: set, but HTTPS is off (no tlsCertificate and tlsKey, tlsMode manual); set both secrets or tlsMode: acme, or remove httpsPort",
    ),
    (
        {"djangoHstsSeconds": 3600},
        "djangoHstsSeconds: set, but HTTPS is off, so no Strict-Transport-Security is sent; set tlsCertificate "
        "and tlsKey, or set it to 0",
    ),
    (
        {"backupRetention": 3},
        "backupRetention: set, but no automatic backup is taken or removed (backupBeforeMigrate is false and "
        "backupSchedule is empty); set one of them, or remove it",
    ),
    (
        {"target": "swarm", "imageSource": "pin", "imagePin": DIGEST},
        "bindAddress: 127.0.0.1 cannot be kept on swarm, which publishes on every address; set 0.0.0.0",
    ),
]


@pytest.mark.parametrize(
    "overrides, message", CONTRADICTIONS, ids=[f"{next(iter(o))}-{i}" for i, (o, _) in enumerate(CONTRADICTIONS)]
)
def test_a_key_its_stack_ignores_or_contradicts_is_refused(overrides, message):
    assert refused(overrides=overrides) == [message]


def test_prod_with_a_registry_it_never_pushes_to_is_refused():
    assert refused("prod", overrides={"imageRegistry": "ghcr.io/acme"}) == [
        "imageRegistry: set, but imageSource is stack, which pushes nothing; remove it (pulls from a private "
        "registry authenticate with docker:registryAuth)"
    ]


def test_a_pinned_prod_keeps_its_source_stack_for_unpinning():
    plan = plan_prod(overrides={"imageSource": "pin", "imagePin": DIGEST})
    assert plan.outputs["imageRef"] == DIGEST


# --- secrets: whitespace, and never echoed -------------------------------------------------------


@pytest.mark.parametrize(
    "key, value, message",
    [
        (
            "postgresPassword",
            "   ",
            "postgresPassword: only whitespace; set the secret's value, or remove it (`pulumi config rm postgresPassword`)",
        ),
        (
            "djangoSecretKey",
            "s3cret-value-with-newline\n",
            "djangoSecretKey: starts or ends with whitespace (a newline?); set it again without it",
        ),
        (
            "imageRegistryPassword",
            " token-value",
            "imageRegistryPassword: starts or ends with whitespace (a newline?); set it again without it",
        ),
        (
            "tlsKey",
            "\n\n",
            "tlsKey: only whitespace; set the secret's value, or remove it (`pulumi config rm tlsKey`)",
        ),
    ],
)
def test_secrets_of_whitespace_are_refused_and_not_echoed(key, value, message):
    overrides = (
        {"imageRegistry": "ghcr.io/acme", "imageRegistryUsername": "bot"} if key == "imageRegistryPassword" else {}
    )
    lines = refused(overrides=overrides, secrets={key: value})
    assert message in lines
    assert all(value.strip() not in line for line in lines if value.strip())


REGISTRY_SECRET = "hunter2-registry-token"


@pytest.mark.parametrize(
    "value, message",
    [
        (
            REGISTRY_SECRET,
            "docker:registryAuth: not JSON (a list of {address, username, password}); set it with "
            "`pulumi config set --path 'docker:registryAuth[0].address' ghcr.io` (and --secret for the password)",
        ),
        (
            '[{"address": "ghcr.io", "username": "bot", "password": NaN}]',
            "docker:registryAuth: not JSON (a list of {address, username, password}); set it with "
            "`pulumi config set --path 'docker:registryAuth[0].address' ghcr.io` (and --secret for the password)",
        ),
        (
            f'[{{"adress": "ghcr.io", "username": "bot", "password": "{REGISTRY_SECRET}"}}]',
            "docker:registryAuth[0].adress: unknown field; did you mean address?",
        ),
        (
            f'[{{"address": "ghcr.io", "password": "{REGISTRY_SECRET}"}}]',
            "docker:registryAuth[0].username: required with a password",
        ),
        (
            f'[{{"address": "ghcr io", "username": "bot", "password": "{REGISTRY_SECRET}"}}]',
            "docker:registryAuth[0].address: 'ghcr io' is not a host name (letters, digits, - and . only); "
            "expected a registry host like ghcr.io",
        ),
        (
            '[{"address": "ghcr.io", "username": "bot", "password": 12345}]',
            "docker:registryAuth[0].password: expected a string",
        ),
    ],
)
def test_registry_auth_in_the_wrong_shape_never_echoes_the_secret(value, message):
    lines = refused("prod", secrets={**PROD_SECRETS, "docker:registryAuth": value})
    assert message in lines
    assert not any(REGISTRY_SECRET in line or "12345" in line for line in lines)


def test_pulumis_own_get_object_would_have_echoed_it():
    """Why registry.py does not call Config.get_object: its error quotes the value, secret or not."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    previous = runtime_config.CONFIG.get()
    runtime_config.set_all_config({"docker:registryAuth": REGISTRY_SECRET}, ["docker:registryAuth"])
    try:
        with pytest.raises(pulumi.ConfigTypeError) as error:
            pulumi.Config("docker").get_object("registryAuth")
    finally:
        runtime_config.set_all_config(previous, [])
    assert REGISTRY_SECRET in str(error.value)


# --- every problem in one run ---------------------------------------------------------------------


def test_every_problem_is_reported_in_one_run_in_the_order_of_the_settings():
    lines = refused(
        overrides={
            "django-docker:webReplica": 5,
            "webMemory": "nanm",
            "serverName": "bad host",
            "postgresUser": "pg_app",
            "httpsPort": 8443,
        }
    )
    assert lines == [
        "django-docker:webReplica: unknown key; did you mean django-docker:webReplicas? "
        "(docs/configuration.md lists every key)",
        "serverName: 'bad host' is not valid; expected a host name, e.g. example.com",
        "httpsPort: set, but HTTPS is off (no tlsCertificate and tlsKey, tlsMode manual); set both secrets or tlsMode: acme, or remove httpsPort",
        f"webMemory: 'nanm' is not a memory limit; {MEMORY}",
        "postgresUser: 'pg_app' is reserved: PostgreSQL role names cannot begin with \"pg_\"",
    ]


def test_a_bad_value_is_not_reported_again_as_the_contradiction_it_caused():
    """A bad imageSource falls back to build; its pin is not then called ignored."""
    assert refused(overrides={"imageSource": "pinn", "imagePin": DIGEST}) == [
        "imageSource: 'pinn' is not one of build, stack, pin"
    ]


def test_every_default_in_pulumi_yaml_is_valid():
    """The Reader falls back to a key's default after a refusal: every default must pass."""
    from components.settings import keys

    project = keys.project()
    overrides = {name: d.default_text for name, d in project.keys.items() if d.default_text is not None}
    plan = plan_stack("dev", overrides=overrides)
    assert plan.outputs["url"] == "http://localhost:8080/"
