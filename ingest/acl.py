"""Access groups per file from a ``cairn-acl.yaml``: the nearest one at or above the ingested folder.

    rules:
      - pattern: "hr/**"
        groups: ["hr"]

Patterns are globs relative to the folder holding the file (``**`` crosses folders), matched
without regard to case; the first match wins and unmatched files are public. Ingesting
``company/hr`` under ``company/cairn-acl.yaml`` matches ``hr/salaries.md``, as ingesting
``company`` does, so the groups of a file do not depend on where the ingest starts.
"""

from __future__ import annotations

import fnmatch
import unicodedata
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
    def __init__(self, rules: list[AclRule], prefix: str = "") -> None:
        """``prefix``: the ingested folder relative to the ACL file's folder ("" when it is there)."""
        self.rules = rules
        self.prefix = prefix
        self._patterns = [_fold(rule.pattern).removeprefix("./").lstrip("/") for rule in rules]

    @classmethod
    def for_root(cls, root: Path, file_name: str) -> "AccessRules":
        """The nearest ``file_name`` in ``root`` or a folder above it; none anywhere: all public."""
        root = root.resolve()
        for folder in (root, *root.parents):
            path = folder / file_name
            if path.exists():
                rel = root.relative_to(folder).as_posix()
                return cls(cls.load(path).rules, "" if rel == "." else rel)
        return cls([])

    @classmethod
    def load(cls, path: Path) -> "AccessRules":
        if not path.exists():
            return cls([])
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            return cls(AclFile.model_validate(data).rules)
        except OSError as exc:
            raise AclError(f"{path}: cannot read it ({exc.strerror}); fix its permissions and run again") from exc
        except yaml.YAMLError as exc:
            raise AclError(f"{path}: not valid YAML ({exc}); fix the file and run again") from exc
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise AclError(f"{path}: {problems}. Expected `rules: [{{pattern: GLOB, groups: [..]}}]`") from exc

    def groups_for(self, rel_path: str) -> list[str]:
        """Groups of a file given by its path relative to the ingested folder."""
        path = _fold(f"{self.prefix}/{rel_path}" if self.prefix else rel_path)
        for rule, pattern in zip(self.rules, self._patterns):
            if _glob_match(path, pattern):
                return sorted(set(rule.groups))
        return list(PUBLIC)


def _fold(text: str) -> str:
    # case and Unicode form must not decide access: `HR/x` and a macOS NFD name match `hr/**`
    return unicodedata.normalize("NFC", text).casefold()


def _glob_match(path: str, pattern: str) -> bool:
    # fnmatch's `*` already crosses `/`; also let "dir/**" match files directly in dir
    return fnmatch.fnmatchcase(path, pattern) or (
        pattern.endswith("/**") and path.startswith(pattern[:-2])
    )
