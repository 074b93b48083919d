"""Access groups per file from an optional ``cairn-acl.yaml`` at the ingested root.

    rules:
      - pattern: "hr/**"
        groups: ["hr"]

Patterns are globs relative to the root (``**`` crosses folders); the first match wins and
unmatched files are public.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError

PUBLIC = ("public",)


class AclRule(BaseModel):
    model_config = {"extra": "forbid"}
    pattern: str = Field(min_length=1)
    groups: list[str] = Field(min_length=1)


class AclFile(BaseModel):
    model_config = {"extra": "forbid"}
    rules: list[AclRule] = []


class AclError(ValueError):
    pass


class AccessRules:
    def __init__(self, rules: list[AclRule]) -> None:
        self.rules = rules

    @classmethod
    def load(cls, path: Path) -> "AccessRules":
        if not path.exists():
            return cls([])
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            return cls(AclFile.model_validate(data).rules)
        except yaml.YAMLError as exc:
            raise AclError(f"{path}: not valid YAML ({exc}); fix the file and run again") from exc
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise AclError(f"{path}: {problems}. Expected `rules: [{{pattern: GLOB, groups: [..]}}]`") from exc

    def groups_for(self, rel_path: str) -> list[str]:
        for rule in self.rules:
            if _glob_match(rel_path, rule.pattern):
                return sorted(set(rule.groups))
        return list(PUBLIC)


def _glob_match(path: str, pattern: str) -> bool:
    # fnmatch's `*` already crosses `/`; also let "dir/**" match files directly in dir
    return fnmatch.fnmatchcase(path, pattern) or (
        pattern.endswith("/**") and path.startswith(pattern[:-2])
    )
