"""Read models of the ledger: temporal views kept exactly once, rebuilt from the log.

Each view (``parties``, ``agreements``, ``ownership``, ``access``, ``data``,
``parameters``, ``enhancements``, ``reviews``, ``deliveries``, ``audit``) is a module
with its SQLAlchemy tables; :mod:`projections.temporal` holds the as-of machinery,
:mod:`projections.runner` the :class:`~projections.runner.Projector` that keeps them
current, :mod:`projections.rebuild` rebuild and status.
"""
