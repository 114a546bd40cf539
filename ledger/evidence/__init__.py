"""Evidence bundles below the client and the server: the layout and manifest rules
(:mod:`ledger.evidence.layout`), ``report.html`` (:mod:`ledger.evidence.report`) and the
export from any GraphQL client (:mod:`ledger.evidence.export`).

``cmo-ledger export-evidence`` (``clients.evidence``) and the console's download
(``api.console.evidence``) both build their bundles here, so a bundle has one layout
whichever of them wrote it; ``clients.bundle`` verifies it.
"""
