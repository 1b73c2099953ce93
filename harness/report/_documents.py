"""Any report document (JSON, XML, HTML) written the way the run's reports are: atomically.

The run report's writers serialise a RunResult; other reports (vendor-check's) bring their
own documents and share the file handling through these.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ._files import atomic_write, encode_text

# Characters XML 1.0 cannot carry even escaped (TPM vendor strings and HTTP bodies are raw bytes).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """`text` with every character XML 1.0 cannot hold replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


def write_json_document(document: Any, path: str | os.PathLike[str]) -> None:
    atomic_write(Path(path), encode_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n"))


def write_xml_document(root: ET.Element, path: str | os.PathLike[str]) -> None:
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    atomic_write(Path(path), data + b"\n")


def write_text_document(text: str, path: str | os.PathLike[str]) -> None:
    atomic_write(Path(path), encode_text(text))
