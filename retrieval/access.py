"""Who is asking: API keys mapped to a user and access groups, read from an identities file.

The file (``CAIRN_IDENTITIES_FILE``) is YAML::

    anonymous_groups: [public]     # callers without a key; [] refuses them
    users:
      - user: ana
        api_key_sha256: 9f86d0...  # sha256 hex of the key (preferred), or
        # api_key: "the key itself"
        groups: [public, hr]
        admin: true                # may add, sync and remove documents (default false)

Without a file every caller is anonymous with ``CAIRN_ANONYMOUS_GROUPS`` (default
``["public"]``), so a document labelled with any other group stays hidden until keys exist.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

ANONYMOUS_USER = "anonymous"


@dataclass(frozen=True)
class Identity:
    user: str
    groups: tuple[str, ...]
    admin: bool = False  # may ingest and delete documents; reading is still by groups only


class AuthError(Exception):
    """The presented API key is unknown, or a key is required and none was given."""


class IdentitiesFileError(ValueError):
    """The identities file cannot be read or does not follow the schema."""


class UserEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1)
    api_key: SecretStr | None = None
    api_key_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    groups: list[str] = Field(default_factory=list)
    admin: bool = False

    @model_validator(mode="after")
    def _one_key(self) -> "UserEntry":
        if (self.api_key is None) == (self.api_key_sha256 is None):
            raise ValueError(f"user '{self.user}' needs exactly one of api_key or api_key_sha256")
        if self.api_key is not None and len(self.api_key.get_secret_value()) < 16:
            raise ValueError(f"user '{self.user}': api_key must be at least 16 characters")
        return self

    def key_digest(self) -> bytes:
        if self.api_key is not None:
            return _digest(self.api_key.get_secret_value())
        return bytes.fromhex(self.api_key_sha256 or "")


class IdentitiesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    anonymous_groups: list[str] = Field(default_factory=lambda: ["public"])
    users: list[UserEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> "IdentitiesConfig":
        digests = [u.key_digest() for u in self.users]
        if len(set(digests)) != len(digests):
            raise ValueError("two users share the same API key")
        return self


def _identity(entry: UserEntry) -> Identity:
    return Identity(entry.user, tuple(entry.groups), admin=entry.admin)


def _digest(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode("utf-8")).digest()


class Identities:
    """Resolves an API key (or its absence) to an `Identity`."""

    def __init__(self, config: IdentitiesConfig, keys_configured: bool = True) -> None:
        self.config = config
        self.keys_configured = keys_configured
        self._entries = [(u.key_digest(), _identity(u)) for u in config.users]

    @classmethod
    def anonymous_only(cls, groups: Sequence[str] = ("public",)) -> "Identities":
        """No identities file: everyone is anonymous with ``groups``."""
        return cls(IdentitiesConfig(anonymous_groups=list(groups)), keys_configured=False)

    @classmethod
    def load(cls, path: Path) -> "Identities":
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise IdentitiesFileError(
                f"cannot read the identities file {path} ({exc.strerror}): fix CAIRN_IDENTITIES_FILE"
            ) from exc
        except yaml.YAMLError as exc:
            raise IdentitiesFileError(f"{path} is not valid YAML: {exc}") from exc
        try:
            config = IdentitiesConfig.model_validate(raw or {})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
            )
            raise IdentitiesFileError(f"{path}: {problems}") from exc
        return cls(config)

    @classmethod
    def from_settings(cls, settings) -> "Identities":
        if settings.identities_file is None:
            return cls.anonymous_only(settings.anonymous_groups)
        return cls.load(settings.identities_file)

    @property
    def anonymous(self) -> Identity | None:
        groups = self.config.anonymous_groups
        return Identity(ANONYMOUS_USER, tuple(groups)) if groups else None

    @property
    def users(self) -> list[str]:
        """The configured users' names, in file order."""
        return [entry.user for entry in self.config.users]

    def by_user(self, user: str) -> Identity | None:
        """A configured user's identity by name (for a trusted in-process caller, not for API keys)."""
        return next((_identity(u) for u in self.config.users if u.user == user), None)

    def resolve(self, api_key: str | None) -> Identity:
        """The caller's identity; `AuthError` for an unknown key or a refused anonymous call."""
        if not api_key:
            identity = self.anonymous
            if identity is None:
                raise AuthError("an API key is required: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'")
            return identity
        digest = _digest(api_key)
        found: Identity | None = None
        # Compare against every entry, without an early exit, so timing says nothing about keys.
        for entry_digest, identity in self._entries:
            if hmac.compare_digest(digest, entry_digest):
                found = identity
        if found is None:
            raise AuthError("unknown API key")
        return found
