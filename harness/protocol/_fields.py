"""Bounds and field types of the HTTP contract: base64 blobs with their cap, plain text,
device ids in one canonical form, and the strict base model."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)

MAX_EK_CHAIN = 8  # intermediates a client may send; real vendor chains have one or two
MAX_BLOB = 16 * 1024  # bytes after decoding; far above any TPM structure or certificate
_MAX_B64_CHARS = 4 * -(-MAX_BLOB // 3)  # padded base64 of MAX_BLOB bytes: 21,848 characters
_B64_ALPHABET = "[A-Za-z0-9+/]"
_FULL_GROUPS = MAX_BLOB // 3  # 5,461 groups of 4 characters (3 bytes each) fit under the cap


def _b64_pattern() -> str:
    """Padded base64 of at most MAX_BLOB bytes, exactly: what the server decodes (and the schema
    says), so that no string the schema allows is refused for its length."""
    group, extra = f"{_B64_ALPHABET}{{4}}", MAX_BLOB - 3 * _FULL_GROUPS  # 1 byte after the groups
    one, two = f"{_B64_ALPHABET}{{2}}==", f"{_B64_ALPHABET}{{3}}="
    tails = {0: "", 1: f"(?:{one})?", 2: f"(?:{one}|{two})?"}
    return (
        f"^(?:(?:{group}){{0,{_FULL_GROUPS - 1}}}(?:{one}|{two})?"
        f"|(?:{group}){{{_FULL_GROUPS}}}{tails[extra]})$"
    )


B64_PATTERN = _b64_pattern()


def _decode_b64(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError("must be a base64 string")
    if len(value) > _MAX_B64_CHARS:
        raise ValueError(f"is over {_MAX_B64_CHARS} base64 characters")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not valid base64") from exc
    if len(decoded) > MAX_BLOB:
        raise ValueError(f"decodes to {len(decoded)} bytes, more than {MAX_BLOB}")
    return decoded


# Validated from a base64 string, held as bytes, serialised back to base64.
B64In = Annotated[
    bytes,
    BeforeValidator(_decode_b64),
    PlainSerializer(lambda b: base64.b64encode(b).decode("ascii"), return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "contentEncoding": "base64",
            "maxLength": _MAX_B64_CHARS,
            "pattern": B64_PATTERN,
            "description": f"Padded base64 of at most {MAX_BLOB} bytes.",
        }
    ),
]
# No control characters (NUL included) in any text a client sends: they would reach
# reports, logs and the admin page. Lone surrogates are refused by pydantic itself.
PLAIN_TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"
MAX_TEXT = 256
MAX_ID = 128
ShortText = Annotated[str, StringConstraints(max_length=MAX_TEXT, pattern=PLAIN_TEXT_PATTERN)]
IdText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID, pattern=PLAIN_TEXT_PATTERN)]
HResultText = Annotated[str, StringConstraints(pattern=r"^0x[0-9A-Fa-f]{8}$")]
# A device id has one spelling: printable ASCII without spaces (so no surrounding blanks, no
# Unicode hyphen or look-alike letter), compared and stored in lower case. Anything else is
# refused rather than guessed at; see docs/protocol.md, "Device ids".
DEVICE_ID_PATTERN = r"^[!-~]+$"


def canonical_device_id(value: str) -> str:
    """The one stored spelling of an id that matched DEVICE_ID_PATTERN: lower case."""
    return value.lower()


DeviceIdText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID, pattern=DEVICE_ID_PATTERN),
    AfterValidator(canonical_device_id),
]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _Model(BaseModel):
    # strict: JSON types are what they say (false is not 0, 1 is not "1").
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)


# --- AIK certificate authority -------------------------------------------------------
