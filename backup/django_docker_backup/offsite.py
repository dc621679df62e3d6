"""Off-host copies in an S3-compatible bucket (AWS S3, Backblaze B2, Cloudflare R2, MinIO,
SeaweedFS...), through boto3, optionally encrypted with age.

A backup counts as off-host only once it has been read back: after the upload, the object's
size and its SHA-256 (also stored in its metadata) are checked against the bytes sent, by a
HEAD and then a full GET, and the same for its manifest. Anything else (the server down,
credentials refused, a short object, a different checksum) is a failure, recorded with its one
line, and the backup is tried again later (coolify#7779 reported a failing S3 backup as a
success: here a backup is off-host only when it was read back).

Objects, under the stack's prefix:
    dumps/<backup>[.age]                   the pg_dump archive (encrypted: age, to the recipient)
    dumps/<backup>.manifest.json[.age]     its manifest (table names are the app's: encrypted too)
    drills/<UTC time>.json                 each restore drill's result (counts, no names)
    pgbackrest/...                         the WAL archive and base backups (wal.py)

age: the program gives the accessory only the recipient (age1..., the public half of
`backupEncryptionKey`), so the host can encrypt but never decrypt what it sent; the identity
is given to a restore or a drill only, through its standard input, never in an environment,
a file of the volume, an image or a log.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

from django_docker_backup import names, state
from django_docker_backup.config import Offsite

DUMPS = "dumps"
DRILLS = "drills"
CHUNK = 1 << 20


class OffsiteError(Exception):
    """One line: what failed off-host (no credential, no secret)."""


@dataclass(frozen=True)
class Copy:
    """A backup off-host, as listed."""

    name: str
    key: str
    bytes: int
    modified: datetime
    encrypted: bool
    manifest_key: Optional[str]


def describe(error: BaseException) -> str:
    """One line for a boto3/botocore failure, naming what S3 said and never a credential (an
    upload's S3UploadFailedError is told by the ClientError it wraps)."""
    seen = 0
    cause = error.__cause__ or error.__context__
    while getattr(error, "response", None) is None and cause is not None and seen < 5:
        if getattr(cause, "response", None) is not None:
            error = cause
            break
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        code = response["Error"].get("Code", "?")
        message = (response["Error"].get("Message") or "").strip()
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"{code}{f' (HTTP {status})' if status else ''}: {message}"[:300] if message else str(code)
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:240]}" if text else type(error).__name__


def addressing_style(endpoint_host: str) -> str:
    """Virtual-hosted buckets on AWS, path style elsewhere (MinIO, SeaweedFS, R2, B2 take it;
    pgBackRest's repo1-s3-uri-style says the same: wal.py)."""
    return "virtual" if endpoint_host.endswith("amazonaws.com") else "path"


def client(off: Offsite):
    import boto3  # the image's (python3-boto3)
    import botocore.config

    return boto3.client(
        "s3",
        endpoint_url=off.endpoint,
        region_name=off.region,
        verify=off.ca_file or True,
        config=botocore.config.Config(
            s3={"addressing_style": addressing_style(off.host)},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
        ),
    )


def sha256_file(path: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _age_encrypt(recipient: str, source: str, target: str) -> None:
    result = subprocess.run(
        ["age", "--encrypt", "--recipient", recipient, "--output", target, source], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise OffsiteError(f"age could not encrypt: {result.stderr.strip()[:200]}")


def _age_decrypt(identity: str, source: str, target: str) -> None:
    """Decrypt with the identity given in memory (a 0600 file in the container's /tmp for the
    length of the call: age reads identities from files)."""
    fd, path = tempfile.mkstemp(dir="/tmp", prefix="identity-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(identity if identity.endswith("\n") else identity + "\n")
        result = subprocess.run(
            ["age", "--decrypt", "--identity", path, "--output", target, source], capture_output=True, text=True
        )
    finally:
        os.unlink(path)
    if result.returncode != 0:
        why = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
        raise OffsiteError(f"age could not decrypt it with backupEncryptionKey ({why[:160]})")


def _put_verified(s3, off: Offsite, path: str, key: str, extra: dict[str, str]) -> tuple[str, int]:
    """Upload a file, then read it back: size and SHA-256 from a HEAD (its metadata), then from
    every byte of a GET. Returns (sha256, bytes) of what is verified there."""
    sha, size = sha256_file(path)
    s3.upload_file(path, off.bucket, key, ExtraArgs={"Metadata": {"sha256": sha, **extra}})
    head = s3.head_object(Bucket=off.bucket, Key=key)
    if int(head["ContentLength"]) != size:
        raise OffsiteError(f"{key}: {head['ContentLength']} bytes there, {size} sent")
    if (head.get("Metadata") or {}).get("sha256") != sha:
        raise OffsiteError(f"{key}: its recorded SHA-256 is not the one sent")
    body = s3.get_object(Bucket=off.bucket, Key=key)["Body"]
    digest, read = hashlib.sha256(), 0
    for block in iter(lambda: body.read(CHUNK), b""):
        digest.update(block)
        read += len(block)
    if read != size or digest.hexdigest() != sha:
        raise OffsiteError(f"{key}: read back {read} bytes with another SHA-256 than the {size} sent")
    return sha, size


def upload(off: Offsite, directory: str, name: str) -> dict[str, Any]:
    """Copy one local backup and its manifest off-host, verified; its record (also written to
    the volume: state.offsite_path). Raises OffsiteError (recorded as the failure) otherwise."""
    record_path = state.offsite_path(directory, name)
    previous = state.read(record_path) or {}
    scratch = os.path.join(directory, ".upload")
    os.makedirs(scratch, mode=0o700, exist_ok=True)
    source = os.path.join(directory, name)
    manifest = state.read(state.manifest_path(directory, name))
    encrypted = bool(off.recipient)
    suffix = names.ENCRYPTED if encrypted else ""
    key = off.key(DUMPS, name + suffix)
    manifest_key = off.key(DUMPS, name + names.MANIFEST + suffix)
    made: list[str] = []
    try:
        if manifest is None:
            # Taken without the agent (before the accessory existed): its size and checksum only;
            # a drill of it restores it but has no row counts to compare.
            sha, size = sha256_file(source)
            manifest = {"name": name, "bytes": size, "sha256": sha, "tables": None, "rows": None}
            state.write(state.manifest_path(directory, name), manifest)
        body = source
        if encrypted:
            body = os.path.join(scratch, name + names.ENCRYPTED)
            made.append(body)
            _age_encrypt(off.recipient, source, body)
        s3 = client(off)
        sha, size = _put_verified(s3, off, body, key, {"backup": name})
        manifest_file = os.path.join(scratch, name + names.MANIFEST)
        made.append(manifest_file)
        with open(manifest_file, "w") as handle:
            json.dump(
                {**manifest, "offsite": {"key": key, "bytes": size, "sha256": sha, "encrypted": encrypted}}, handle
            )
        if encrypted:
            made.append(manifest_file + names.ENCRYPTED)
            _age_encrypt(off.recipient, manifest_file, manifest_file + names.ENCRYPTED)
            manifest_file += names.ENCRYPTED
        _put_verified(s3, off, manifest_file, manifest_key, {"backup": name})
    except Exception as error:
        line = str(error) if isinstance(error, OffsiteError) else describe(error)
        record = {
            "name": name,
            "error": line,
            "failed_at": state.stamp(),
            "attempts": int(previous.get("attempts", 0)) + 1,
            "where": off.where,
        }
        state.write(record_path, record)
        raise OffsiteError(line) from None
    finally:
        for path in made:
            if os.path.exists(path):
                os.unlink(path)
    record = {
        "name": name,
        "key": key,
        "manifest_key": manifest_key,
        "bytes": size,
        "sha256": sha,
        "encrypted": encrypted,
        "verified_at": state.stamp(),
        "where": off.where,
    }
    state.write(record_path, record)
    return record


def listing(off: Offsite, stack: str) -> list[Copy]:
    """The stack's backups off-host (a dump and its manifest both there), oldest first."""
    s3 = client(off)
    objects: dict[str, dict] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=off.bucket, Prefix=off.key(DUMPS) + "/"):
        for item in page.get("Contents", []) or []:
            objects[item["Key"].rsplit("/", 1)[-1]] = item
    found = []
    for leaf, item in objects.items():
        encrypted = leaf.endswith(".dump" + names.ENCRYPTED)
        name = leaf[: -len(names.ENCRYPTED)] if encrypted else leaf
        if names.parse(name, stack) is None:
            continue
        manifest_leaf = name + names.MANIFEST + (names.ENCRYPTED if encrypted else "")
        found.append(
            Copy(
                name=name,
                key=item["Key"],
                bytes=int(item["Size"]),
                modified=item["LastModified"],
                encrypted=encrypted,
                manifest_key=objects[manifest_leaf]["Key"] if manifest_leaf in objects else None,
            )
        )
    return sorted(found, key=lambda c: c.name)


def _download(s3, off: Offsite, key: str, target: str) -> tuple[str, int]:
    """Fetch an object to `target`, checking it against the SHA-256 and size it was stored with."""
    head = s3.head_object(Bucket=off.bucket, Key=key)
    expected = (head.get("Metadata") or {}).get("sha256")
    s3.download_file(off.bucket, key, target)
    sha, size = sha256_file(target)
    if size != int(head["ContentLength"]) or (expected and sha != expected):
        raise OffsiteError(f"{key}: the downloaded copy does not match its recorded size and SHA-256")
    return sha, size


def fetch(off: Offsite, directory: str, stack: str, name: str, identity: str = "") -> dict[str, Any]:
    """Bring an off-host backup (empty name: the newest) into the volume, checked and decrypted,
    with its manifest. Returns the manifest. The volume's copy is replaced only once complete."""
    copies = listing(off, stack)
    complete = [c for c in copies if c.manifest_key]
    if not complete:
        raise OffsiteError(f"no backup of stack {stack} at {off.where}")
    chosen = next((c for c in complete if c.name == name), None) if name else complete[-1]
    if chosen is None:
        newest = ", ".join(c.name for c in complete[-3:][::-1])
        raise OffsiteError(f"BACKUP={name}: not at {off.where}; the newest there: {newest}")
    if chosen.encrypted and not identity:
        raise OffsiteError(f"{chosen.name} is encrypted: backupEncryptionKey is needed to restore it")
    scratch = os.path.join(directory, ".download")
    os.makedirs(scratch, mode=0o700, exist_ok=True)
    os.umask(0o077)
    s3 = client(off)
    raw = os.path.join(scratch, os.path.basename(chosen.key))
    raw_manifest = os.path.join(scratch, os.path.basename(chosen.manifest_key or ""))
    plain = os.path.join(scratch, chosen.name)
    plain_manifest = os.path.join(scratch, chosen.name + names.MANIFEST)
    try:
        _download(s3, off, chosen.key, raw)
        _download(s3, off, chosen.manifest_key or "", raw_manifest)
        if chosen.encrypted:
            _age_decrypt(identity, raw, plain)
            _age_decrypt(identity, raw_manifest, plain_manifest)
        else:
            os.replace(raw, plain)
            os.replace(raw_manifest, plain_manifest)
        with open(plain_manifest) as handle:
            manifest = json.load(handle)
        sha, size = sha256_file(plain)
        if sha != manifest.get("sha256") or size != manifest.get("bytes"):
            raise OffsiteError(f"{chosen.name}: the decrypted archive is not the one its manifest describes")
        state.write(state.manifest_path(directory, chosen.name), manifest)
        os.replace(plain, os.path.join(directory, chosen.name))
        return manifest
    except OffsiteError:
        raise
    except Exception as error:
        raise OffsiteError(describe(error)) from None
    finally:
        for path in (raw, raw_manifest, plain, plain_manifest):
            if os.path.exists(path):
                os.unlink(path)


def delete(off: Offsite, copy: Copy) -> None:
    s3 = client(off)
    for key in (copy.key, copy.manifest_key):
        if key:
            s3.delete_object(Bucket=off.bucket, Key=key)


def put_json(off: Offsite, key: str, data: Any) -> None:
    """A small record (a drill's result) off-host, verified like a backup."""
    fd, path = tempfile.mkstemp(dir="/tmp", suffix=".json")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        _put_verified(client(off), off, path, off.key(key), {})
    finally:
        os.unlink(path)


def get_json(off: Offsite, key: str) -> Optional[Any]:
    try:
        body = client(off).get_object(Bucket=off.bucket, Key=off.key(key))["Body"].read()
    except Exception as error:
        if "NoSuchKey" in describe(error) or "404" in describe(error):
            return None
        raise OffsiteError(describe(error)) from None
    return json.loads(body)
