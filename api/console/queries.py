"""The GraphQL operations the console pages run, and how they run them.

Pages never read the views themselves: each runs one of these operations through the
served schema with a :class:`~api.context.Context` for the session's party, exactly as
``POST /graphql`` builds it, so every access rule is the API's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
from graphql import GraphQLError
from starlette.requests import Request

from api.auth import Caller
from api.context import Context
from api.errors import LIMIT_EXCEEDED, classify
from api.threads import request_threads

__all__ = [
    "AUDIT",
    "BATCH_DISCRETE",
    "BATCH_EVENTS",
    "BATCH_EXCURSIONS",
    "BATCH_RECORD",
    "BATCH_SERIES",
    "CLAIMS",
    "GRANTS",
    "GRANTS_AT",
    "HOME",
    "LEAF_PROOF",
    "MAX_BATCHES",
    "PARAMETER_HISTORY",
    "PENDING",
    "Answer",
    "batch_issues",
    "execute",
]

MAX_BATCHES = 50
"""The home page looks at the open issues of this many of the latest batches."""
HOME = """
query ConsoleHome($latest: Int!) {
  me { id legalName role keyId keysExpiringSoon { id expiresAt } }
  agreements {
    id title sponsor cmo status proposedBy proposedAt termsVersion effectiveFrom
    batches(latest: $latest) { id startedAt }
  }
  reviews(overdue: true) { agreementId nextDue state cadenceMonths }
  deliveries(late: true) { agreementId batch dataClass item dueAt firstArrivedAt state }
  grants(active: true) {
    id agreementId grantor grantee purpose validUntil dataClasses includeConfidential
  }
}
"""

CLAIMS = "query ConsoleClaims { enhancements { id agreementId claimant claimedAt title status } }"

PENDING = """
query ConsolePending($id: ID!) {
  agreement(id: $id) { amendments { position proposedBy proposedAt reason status } }
  parameters(agreementId: $id) { name revisions { proposedBy proposedAt reason outcome } }
}
"""

_ISSUE_FRAGMENTS = """
fragment ConsoleDeviations on Batch {
  events(kinds: ["deviation", "oos", "oot"]) {
    id kind severity startedAt description acknowledgedAt supersededBy
  }
}
fragment ConsoleExcursions on Batch {
  excursions { evaluation reporting reportDue record { id parameter value unit sampledAt } }
}
"""


def batch_issues(count: int) -> str:
    """One operation asking the open deviations (alias ``d<i>``) and excursions (``x<i>``)
    of ``count`` batches, named by the variables ``$b0`` ...: one parse and one permission
    pass for them all, each batch still judged by its own fields' rules (a refused batch
    is ``null`` with its error, the others stand)."""
    names = ", ".join(f"$b{i}: String!" for i in range(count))
    fields = " ".join(
        f"d{i}: batch(id: $b{i}) {{ ...ConsoleDeviations }} "
        f"x{i}: batch(id: $b{i}) {{ ...ConsoleExcursions }}"
        for i in range(count)
    )
    return f"query ConsoleBatchIssues({names}) {{ {fields} }}{_ISSUE_FRAGMENTS}"


AUDIT = """
query ConsoleAuditTrail($filter: AuditFilter, $first: Int!, $after: String) {
  auditTrail(filter: $filter, first: $first, after: $after) {
    edges {
      cursor
      node {
        position leafIndex recordedAt signedAt type signer person printedName key meaning
        reason subject version agreementId batch
      }
    }
    pageInfo { hasNextPage endCursor }
    position
  }
}
"""

AUDIT_COLUMNS = (
    "position",
    "leafIndex",
    "recordedAt",
    "signedAt",
    "type",
    "signer",
    "person",
    "printedName",
    "key",
    "meaning",
    "reason",
    "subject",
    "version",
    "agreementId",
    "batch",
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """One error of an answer: its code, field and message."""

    code: str
    field: str | None
    message: str


@dataclass(frozen=True, slots=True)
class Answer:
    """What an operation answered."""

    data: dict[str, Any] | None
    errors: tuple[Refusal, ...]

    def refused(self, code: str) -> bool:
        """Whether any error carries ``code``."""
        return any(error.code == code for error in self.errors)


def _refusal(error: GraphQLError) -> Refusal:
    code, field = classify(error)
    return Refusal(code, field, error.message)


async def execute(
    request: Request, caller: Caller, query: str, variables: dict[str, Any] | None = None
) -> Answer:
    """Run ``query`` as ``caller`` through the served schema, within the time budget."""
    view = request.app.state.graphql
    services = view.services
    context = Context(
        ledger=services.ledger,
        settings=services.settings,
        limits=services.limits,
        services=services,
        party=caller,
        request=request,
    )
    budget = services.limits.query_time_budget
    result = None
    with request_threads(), anyio.move_on_after(budget):
        result = await view.schema.execute(query, variable_values=variables, context_value=context)
    if result is None:
        message = f"the page's query ran over its time budget of {budget:g} s: narrow the filter"
        return Answer(None, (Refusal(LIMIT_EXCEEDED, None, message),))
    errors = tuple(_refusal(error) for error in result.errors or [])
    return Answer(result.data, errors)


# ------------------------------------------------------------ the second slice

BATCH_RECORD = """
query ConsoleBatchRecord($id: String!) {
  ledger { origin notaryKey }
  traceBatch(id: $id) {
    position answeredAt
    checkpoint { treeSize rootHash signedAt }
    batch {
      id subject agreementId product site startedAt endedAt registeredAt registeredBy
      tags { tag dataClass first last points }
    }
    agreement { id title sponsor cmo }
    parameterLimits {
      parameterId name kind
      versions {
        version effectiveFrom retroactive revision unit target status inForce
        alert { low high } action { low high }
      }
    }
    grants {
      id grantor grantee dataClasses parameters batches windowFrom windowUntil validFrom
      validUntil grantedAt purpose includeConfidential status revokedAt activeNow
    }
    events {
      position leafIndex type signer person printedName key meaning reason signedAt recordedAt
    }
    corrections { id dataClass supersedes reason signer key recordedAt }
  }
}
"""

BATCH_DISCRETE = """
query ConsoleBatchDiscrete($id: String!) {
  batch(id: $id) {
    discrete(includeSuperseded: true) {
      id version parameter value unit sampledAt method evaluation limitsVersion status
      submission supersededBy recordedAt masked
    }
  }
}
"""

BATCH_EVENTS = """
query ConsoleBatchEvents($id: String!) {
  batch(id: $id) {
    events(includeSuperseded: true) {
      id version kind startedAt endedAt severity description status submission
      supersededBy acknowledgedAt acknowledgedBy recordedAt masked
    }
  }
}
"""

BATCH_EXCURSIONS = """
query ConsoleBatchExcursions($id: String!) {
  batch(id: $id) {
    seriesExcursions {
      tag parameterId limitsVersion evaluation first last count worst reportDue reporting
    }
  }
}
"""

BATCH_SERIES = """
query ConsoleBatchSeries($id: String!, $tag: String!, $every: String, $dataClass: String!) {
  batch(id: $id) {
    continuous(tag: $tag, every: $every, dataClass: $dataClass) {
      tag every points timestamps values min max
    }
  }
}
"""

LEAF_PROOF = """
query ConsoleLeafProof($leaf: Int!) {
  checkpoint { note treeSize rootHash signedAt }
  inclusionProof(leafIndex: $leaf) { leafIndex treeSize hashes }
  event(leafIndex: $leaf) { leafBytes }
}
"""

PARAMETER_HISTORY = """
query ConsoleParameterHistory($id: ID!, $subject: ID!) {
  agreement(id: $id) { id title sponsor cmo }
  parameters(agreementId: $id) {
    id name kind unit state definedBy definedAt retiredAt retiredBy limitsVersion
    limitsHistory {
      version effectiveFrom retroactive revision unit target status rationale inForce
      alert { low high } action { low high }
    }
    revisions {
      id proposedBy proposedAt reason changes outcome decidedBy decidedAt decisionReason
    }
  }
  auditTrail(filter: { subject: $subject }, first: 200) {
    edges { node { position leafIndex type signer key meaning reason signedAt recordedAt } }
  }
}
"""

GRANTS = """
query ConsoleGrants($agreement: ID, $active: Boolean) {
  agreements { id title }
  grants(agreementId: $agreement, active: $active) {
    id agreementId grantor grantee dataClasses parameters batches windowFrom windowUntil
    validFrom validUntil grantedAt purpose includeConfidential enhancements status
    revokedAt revokedBy revokeReason active activeNow
  }
}
"""

GRANTS_AT = """
query ConsoleGrantsAt($party: String!, $at: DateTime!) {
  grantsAt(party: $party, validAt: $at) {
    id agreementId grantor grantee dataClasses parameters batches windowFrom windowUntil
    validFrom validUntil grantedAt purpose includeConfidential enhancements status
    revokedAt revokedBy revokeReason active activeNow
  }
}
"""
