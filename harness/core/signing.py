"""Signatures on evidence: OpenSSH's `ssh-keygen -Y sign`, checked against an allowed-signers file.

A hash chain shows that a file changed, but whoever can write the folder can recompute the chain.
A signature made with a key the forger does not hold cannot be recomputed. OpenSSH is the tool:
`ssh-keygen -Y sign` writes `FILE.sig` (the SSHSIG format, the one git uses for signed commits);
an allowed-signers file says which key may sign for which principal (a person or a machine's
name) and for which namespace; ours is NAMESPACE, so an evidence signature can never pass for an
SSH login or a git commit, nor the other way round. Anyone can check a file by hand:

    ssh-keygen -Y verify -f ALLOWED_SIGNERS -I PRINCIPAL -n gameday-evidence@svgai -s FILE.sig < FILE

The key. `home_key(home)` makes an Ed25519 key at first use in the home's secrets folder
(`<home>/secrets/evidence-signing-key`, 0600, no passphrase: a CI job signs unattended) and adds
its public half to the home's `allowed_signers` with the principal `gameday@<host>` (or the one
given). A key of one's own (`--signing-key`) works too: its public half must then be named in the
allowed-signers file the auditor checks against, which should be kept apart from the evidence (a
forger who can edit that file can name their own key).

    home_key(home, principal=None)      → Path of the home's key (made at first use)
    given_key(path)                     → Path of a key given by a person (checked: a private key, not too open)
    sign(path, key)                     → FILE.sig beside FILE
    AllowedSigners.read(path)           → who may sign
    check(path, allowed, sig=None)      → Signer(principal, fingerprint) or SignatureProblem

Checking. `check` verifies Ed25519 signatures in-process (the SSHSIG format of OpenSSH's
PROTOCOL.sshsig, verified with the `cryptography` package: 10,000 runs in well under a second,
where one `ssh-keygen` process per file took 7 ms); any other key type, and any allowed-signers
file with options beyond `namespaces`, is handed to `ssh-keygen -Y verify` itself. The two
agree (tests/test_signing.py checks them against each other). The bottom layer: imports nothing of
ours.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import shlex
import shutil
import socket
import stat
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["NAMESPACE", "KEY_NAME", "ALLOWED_SIGNERS_NAME", "SIG_SUFFIX", "SigningError", "SignatureProblem",
           "Signer", "AllowedSigners", "home_key", "given_key", "sign", "check", "check_data", "fingerprint_of_key",
           "principal_of_key"]

NAMESPACE = "gameday-evidence@svgai"
KEY_NAME = "evidence-signing-key"      # in <home>/secrets/, with its .pub beside it
ALLOWED_SIGNERS_NAME = "allowed_signers"  # in <home>/: who may sign this home's evidence
SIG_SUFFIX = ".sig"
SSH_KEYGEN = "ssh-keygen"
_ARMOR_BEGIN, _ARMOR_END = "-----BEGIN SSH SIGNATURE-----", "-----END SSH SIGNATURE-----"


class SigningError(RuntimeError):
    """A signature could not be made (no key, ssh-keygen missing or refusing): one line saying why."""


class SignatureProblem(ValueError):
    """A signature that does not prove its file: missing, malformed, another namespace, a key
    nobody allowed, or a file changed since it was signed. The message names which."""


@dataclass(frozen=True)
class Signer:
    principal: str
    fingerprint: str  # SHA256:… as ssh-keygen -l prints it
    key_type: str

    def __str__(self) -> str:
        return f"{self.principal} ({self.key_type} {self.fingerprint})"


# The key ----------------------------------------------------------------------------------------

def home_key(home: str | os.PathLike, principal: str | None = None) -> Path:
    """The home's signing key, made at first use (Ed25519, 0600 in the 0700 secrets folder) and
    named in the home's allowed_signers with `principal` (default gameday@<host>)."""
    home = Path(home)
    secrets_dir = home / "secrets"
    secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    secrets_dir.chmod(0o700)
    key = secrets_dir / KEY_NAME
    if not key.is_file():
        principal = principal or f"gameday@{socket.gethostname()}"
        _need_ssh_keygen()
        tmp = Path(tempfile.mkdtemp(dir=secrets_dir, prefix=".key-"))
        try:
            done = subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", principal, "-f", str(tmp / "k")],
                                  capture_output=True, text=True, timeout=30)
            if done.returncode != 0:
                raise SigningError(f"ssh-keygen could not make a signing key in {secrets_dir}: {_last(done.stderr)}")
            (tmp / "k").chmod(0o600)
            os.replace(tmp / "k.pub", Path(f"{key}.pub"))
            os.replace(tmp / "k", key)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    allowed = home / ALLOWED_SIGNERS_NAME
    public = Path(f"{key}.pub").read_text().split()
    line = _allowed_line(principal or _comment_principal(public) or f"gameday@{socket.gethostname()}", public)
    known = allowed.read_text() if allowed.is_file() else ""
    if " ".join(public[:2]) not in known:  # a key already named there keeps its principal
        with open(allowed, "a", encoding="utf-8") as f:
            f.write(("" if not known or known.endswith("\n") else "\n") + line)
    return key


def given_key(path: str | os.PathLike) -> Path:
    """A signing key a person names (`--signing-key`): an OpenSSH private key only its owner can
    read (ssh-keygen refuses others). SigningError saying what is wrong otherwise."""
    key = Path(path).expanduser()
    if not key.is_file():
        raise SigningError(f"--signing-key {path}: no such file")
    mode = stat.S_IMODE(key.stat().st_mode)
    if mode & 0o077:
        raise SigningError(f"--signing-key {path}: readable by others (mode {mode:o}); chmod 600 it")
    head = key.read_text(errors="replace")[:80]
    if "PRIVATE KEY" not in head:
        raise SigningError(f"--signing-key {path}: not a private key (give the key, not its .pub)")
    return key


def principal_of_key(key: str | os.PathLike) -> str | None:
    """The principal a key's .pub comment names (ours write it there), else None."""
    pub = Path(f"{key}.pub")
    return _comment_principal(pub.read_text().split()) if pub.is_file() else None


def fingerprint_of_key(key: str | os.PathLike) -> str:
    """SHA256:… of a key's public half (its .pub beside it, else derived by ssh-keygen)."""
    pub = Path(f"{key}.pub")
    if pub.is_file():
        fields = pub.read_text().split()
    else:
        done = subprocess.run([SSH_KEYGEN, "-y", "-f", str(key)], capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise SigningError(f"{key}: ssh-keygen cannot read it: {_last(done.stderr)}")
        fields = done.stdout.split()
    return _fingerprint(base64.b64decode(fields[1]))


# Signing ----------------------------------------------------------------------------------------

def sign(path: str | os.PathLike, key: str | os.PathLike) -> Path:
    """Sign `path` with `key` for NAMESPACE; writes PATH.sig (atomically) and returns it."""
    path = Path(path)
    _need_ssh_keygen()
    sig = Path(f"{path}{SIG_SUFFIX}")
    with open(path, "rb") as message:
        done = subprocess.run([SSH_KEYGEN, "-q", "-Y", "sign", "-f", str(key), "-n", NAMESPACE], stdin=message,
                              capture_output=True, timeout=60)
    if done.returncode != 0 or _ARMOR_BEGIN.encode() not in done.stdout:
        raise SigningError(f"ssh-keygen could not sign {path.name} with {key}: "
                           f"{_last(done.stderr.decode(errors='replace'))}")
    tmp = sig.with_name(f".{sig.name}.tmp")
    tmp.write_bytes(done.stdout)
    os.replace(tmp, sig)
    return sig


# Checking ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Allowed:
    principals: tuple[str, ...]
    namespaces: tuple[str, ...] | None  # None: any namespace
    key_type: str
    blob: bytes


class AllowedSigners:
    """An allowed-signers file (ssh-keygen(1), ALLOWED SIGNERS): `principals [options] keytype key`."""

    def __init__(self, path: Path, entries: list[_Allowed], plain: bool):
        self.path = path
        self.entries = entries
        self.plain = plain  # only `namespaces` options: checked in-process; else by ssh-keygen

    @classmethod
    def read(cls, path: str | os.PathLike) -> "AllowedSigners":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise SignatureProblem(f"allowed signers {path}: cannot be read ({e.strerror or e})") from None
        entries, plain = [], True
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            try:
                fields = shlex.split(line)
            except ValueError:
                raise SignatureProblem(f"allowed signers {path}:{n}: unreadable line") from None
            at = next((i for i, f in enumerate(fields) if f.startswith(("ssh-", "ecdsa-", "sk-"))), None)
            if at is None or at + 1 >= len(fields) or at == 0:
                raise SignatureProblem(f"allowed signers {path}:{n}: expected 'principals [options] keytype key'")
            namespaces = None
            for option in ",".join(fields[1:at]).split(","):
                if not option:
                    continue
                name, _, value = option.partition("=")
                if name.lower() == "namespaces":
                    namespaces = tuple(v.strip() for v in value.split(",") if v.strip())
                else:
                    plain = False  # cert-authority, valid-after/before: ssh-keygen knows best
            try:
                blob = base64.b64decode(fields[at + 1], validate=True)
            except ValueError:
                raise SignatureProblem(f"allowed signers {path}:{n}: the key is not base64") from None
            entries.append(_Allowed(tuple(fields[0].split(",")), namespaces, fields[at], blob))
        if not entries:
            raise SignatureProblem(f"allowed signers {path}: names nobody")
        return cls(path, entries, plain)

    def who(self, blob: bytes) -> list[_Allowed]:
        return [e for e in self.entries if e.blob == blob]  # a handful of entries: no index needed


def check(path: str | os.PathLike, allowed: AllowedSigners, sig: str | os.PathLike | None = None,
          data: bytes | None = None) -> Signer:
    """Who signed `path` (its signature PATH.sig, or `sig`), if the signature is good, in our
    namespace, by a key `allowed` names for it. SignatureProblem naming what is wrong otherwise.
    `data`: the file's content when the caller has read it already."""
    path = os.fspath(path)
    name = os.path.basename(path)
    sig = os.fspath(sig) if sig else f"{path}{SIG_SUFFIX}"
    try:
        with open(sig, encoding="ascii") as f:
            armored = f.read()
    except FileNotFoundError:
        raise SignatureProblem(f"{name}: not signed (no {os.path.basename(sig)})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SignatureProblem(f"{os.path.basename(sig)}: cannot be read ({e})") from None
    if data is None:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise SignatureProblem(f"{name}: cannot be read ({e.strerror or e})") from None
    return check_data(data, armored, allowed, name, Path(path), Path(sig))


def check_data(data: bytes, armored: str, allowed: AllowedSigners, name: str, path: Path | None = None,
               sig: Path | None = None) -> Signer:
    """check() on contents already read: `data` signed by `armored` (PATH and SIG are needed only
    for a key type ssh-keygen must check itself)."""
    key_type, namespace, hash_alg, signature, blob = _parse(armored, f"{name}{SIG_SUFFIX}")
    if namespace != NAMESPACE:
        raise SignatureProblem(f"{name}: signed for namespace {namespace!r}, not {NAMESPACE!r}")
    fp = _fingerprint(blob)
    matches = [e for e in allowed.who(blob) if e.namespaces is None or NAMESPACE in e.namespaces]
    if not matches:
        raise SignatureProblem(f"{name}: signed by a key not in the allowed signers {allowed.path.name} "
                               f"({key_type} {fp}): refused")
    principal = matches[0].principals[0]
    if key_type == "ssh-ed25519" and allowed.plain:
        _check_ed25519(blob, namespace, hash_alg, signature, data, name)
    elif path is None or sig is None:
        raise SignatureProblem(f"{name}: a {key_type} signature needs ssh-keygen, which needs the files")
    else:
        _check_with_ssh_keygen(path, sig, allowed.path, principal, data)
    return Signer(principal, fp, _short_type(key_type))


# Internals --------------------------------------------------------------------------------------

def _need_ssh_keygen() -> None:
    if shutil.which(SSH_KEYGEN) is None:
        raise SigningError("ssh-keygen not found: install OpenSSH's client (Debian: openssh-client)")


def _last(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _comment_principal(public_fields: list[str]) -> str | None:
    comment = public_fields[2] if len(public_fields) > 2 else ""
    return comment if re.fullmatch(r"[\w.@+-]+", comment or "") else None


def _allowed_line(principal: str, public_fields: list[str]) -> str:
    return f'{principal} namespaces="{NAMESPACE}" {public_fields[0]} {public_fields[1]}\n'


def _fingerprint(blob: bytes) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _short_type(key_type: str) -> str:
    return {"ssh-ed25519": "ED25519", "ssh-rsa": "RSA"}.get(key_type, key_type.upper())


class _Reader:
    """SSH wire format: uint32 lengths before strings (RFC 4251)."""

    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def raw(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise ValueError("truncated")
        out = self.data[self.at:self.at + n]
        self.at += n
        return out

    def uint32(self) -> int:
        return struct.unpack(">I", self.raw(4))[0]

    def string(self) -> bytes:
        return self.raw(self.uint32())


def _string(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def _parse(armored: str, name: str) -> tuple[str, str, str, bytes, bytes]:
    """(key type, namespace, hash algorithm, raw signature, public key blob) of an SSHSIG file."""
    text = armored.strip()
    if not (text.startswith(_ARMOR_BEGIN) and text.endswith(_ARMOR_END)):
        raise SignatureProblem(f"{name}: not an SSH signature")
    try:
        r = _Reader(base64.b64decode("".join(text[len(_ARMOR_BEGIN):-len(_ARMOR_END)].split()), validate=True))
        if r.raw(6) != b"SSHSIG" or r.uint32() != 1:
            raise ValueError("not SSHSIG version 1")
        blob, namespace = r.string(), r.string()
        r.string()  # reserved
        hash_alg, wrapped = r.string(), r.string()
        key_type = _Reader(blob).string().decode()
        w = _Reader(wrapped)
        sig_type, signature = w.string().decode(), w.string()
    except (ValueError, UnicodeDecodeError, struct.error) as e:
        raise SignatureProblem(f"{name}: malformed SSH signature ({e})") from None
    if key_type == "ssh-ed25519" and sig_type != "ssh-ed25519":
        raise SignatureProblem(f"{name}: signature type {sig_type} does not match its key {key_type}")
    return key_type, namespace.decode(errors="replace"), hash_alg.decode(errors="replace"), signature, blob


def _check_ed25519(blob: bytes, namespace: str, hash_alg: str, signature: bytes, data: bytes, name: str) -> None:
    digest = {"sha512": hashlib.sha512, "sha256": hashlib.sha256}.get(hash_alg)
    if digest is None:
        raise SignatureProblem(f"{name}: unknown hash algorithm {hash_alg!r} in its signature")
    signed = (b"SSHSIG" + _string(namespace.encode()) + _string(b"") + _string(hash_alg.encode())
              + _string(digest(data).digest()))
    r = _Reader(blob)
    r.string()
    try:
        Ed25519PublicKey.from_public_bytes(r.string()).verify(signature, signed)
    except (InvalidSignature, ValueError):
        raise SignatureProblem(f"{name}: signature does not match its content (changed since it was signed)") from None


def _check_with_ssh_keygen(path: Path, sig: Path, allowed: Path, principal: str, data: bytes) -> None:
    _need_ssh_keygen()
    done = subprocess.run([SSH_KEYGEN, "-Y", "verify", "-f", str(allowed), "-I", principal, "-n", NAMESPACE,
                           "-s", str(sig)], input=data, capture_output=True, timeout=60)
    if done.returncode != 0:
        raise SignatureProblem(f"{path.name}: signature does not verify for {principal} "
                               f"({_last(done.stderr.decode(errors='replace'))})")
