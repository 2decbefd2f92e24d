"""Secret values in configuration.

Secrets must come from the environment (``${NAME}``) or a file (``${file:/path}``), never be
written in the YAML itself. The config loader resolves references into :class:`ResolvedRef`
strings that remember where they came from; a secret field turns whatever it gets into a
:class:`SecretValue` whose ``source`` says ``env:NAME``, ``file:/path`` or ``plaintext``, so
the loader can refuse plaintext secrets and logs can never print the value.
"""

from __future__ import annotations

from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

PLAINTEXT = "plaintext"


class ResolvedRef(str):
    """A string produced by resolving ``${...}``; ``source`` names the reference."""

    source: str

    def __new__(cls, value: str, source: str) -> ResolvedRef:
        obj = super().__new__(cls, value)
        obj.source = source
        return obj


class SecretValue:
    """A secret that never shows itself in ``repr``/``str``; read it with ``reveal()``."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        """The secret itself; call only where it is sent to the CRM."""
        return self._value

    def __repr__(self) -> str:
        return f"SecretValue(source={self.source!r})"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source_type: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _to_secret,
            serialization=core_schema.plain_serializer_function_ser_schema(str),
            json_schema_input_schema=core_schema.str_schema(),
        )


def _to_secret(value: Any) -> SecretValue:
    if isinstance(value, SecretValue):
        return value
    if isinstance(value, ResolvedRef):
        if not value:
            raise ValueError(f"the secret from {value.source} is empty")
        return SecretValue(str(value), value.source)
    if isinstance(value, str):
        if not value:
            raise ValueError("a secret must not be empty")
        return SecretValue(value, PLAINTEXT)
    raise ValueError("expected a secret: a ${ENV_VAR} or ${file:/path} reference")


Secret = SecretValue
"""Annotation for config fields that hold secrets."""
