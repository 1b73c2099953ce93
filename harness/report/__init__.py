"""Reports of a fleet run: results.json (the record), junit.xml (for CI), index.html (for people).

Every writer reads a RunResult; load_results reads a results.json back, so a report can be
re-rendered later, for instance after the page's layout changed. decode_payload reads back
what index.html carries, as the page's script sees it.
"""

from ._all import write_reports
from ._documents import write_json_document, write_text_document, write_xml_document, xml_text
from ._html import decode_payload, write_html
from ._json import load_results, write_json
from ._junit import write_junit

__all__ = [
    "decode_payload",
    "load_results",
    "write_html",
    "write_json",
    "write_json_document",
    "write_junit",
    "write_reports",
    "write_text_document",
    "write_xml_document",
    "xml_text",
]
