"""An import-linter contract type import-linter lacks: only named modules may import a submodule of an external package.

import-linter records an external package by its top name only (`twilio`, never `twilio.rest`), so its forbidden
contracts cannot say "only the gateway talks to Twilio's REST API" while TwiML (`twilio.twiml`) is used elsewhere.
This contract reads the import statements grimp recorded for the top name and keeps those naming the submodule.
"""
from __future__ import annotations

import re
from typing import Any

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output


class OwnedImportContract(Contract):
    """`submodule` (e.g. twilio.rest) is imported by the `owners` modules and by no other module.

    Options: submodule (an external package's submodule), owners (module names).
    """

    submodule = fields.StringField()
    owners = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        """Kept when every import statement naming `submodule` is in one of the owners."""
        sub = str(self.submodule)
        top, _, rest = sub.partition(".")
        owners = {str(o) for o in self.owners}  # type: ignore[attr-defined]  # a ListField holds its parsed items
        # `import twilio.rest`, `from twilio.rest[.x] import y`, `from twilio import rest`
        pattern = re.compile(rf"\b{re.escape(sub)}\b|\bfrom\s+{re.escape(top)}\s+import\b.*\b{re.escape(rest)}\b")
        found: list[dict[str, Any]] = []
        offenders: list[dict[str, Any]] = []
        for importer in sorted(graph.find_modules_that_directly_import(top)):
            for detail in graph.get_import_details(importer=importer, imported=top):
                if pattern.search(detail["line_contents"]):
                    found.append(detail)
                    if importer not in owners:
                        offenders.append(detail)
        # An owner that no longer imports the submodule means the contract names the wrong module: broken too.
        idle = sorted(owners - {d["importer"] for d in found})
        return ContractCheck(kept=not offenders and not idle, metadata={"offenders": offenders, "idle": idle})

    def render_broken_contract(self, check: ContractCheck) -> None:
        """Each import of the submodule outside its owners, with its line."""
        for d in check.metadata["offenders"]:
            output.print_error(f"{d['importer']} (l.{d['line_number']}) imports {self.submodule}: {d['line_contents']}")
        for owner in check.metadata["idle"]:
            output.print_error(f"{owner} is named as an owner of {self.submodule} but does not import it")
