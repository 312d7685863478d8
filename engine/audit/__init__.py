"""The tamper-evident audit trail: each history entry's hash chains to the one before it."""

from signoff.engine.audit.formats import ChainLine, EndLine, ExportFormatError, read
from signoff.engine.audit.verify import Checker, Verdict, verify

__all__ = ["ChainLine", "Checker", "EndLine", "ExportFormatError", "Verdict", "read", "verify"]
