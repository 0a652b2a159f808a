"""Adapters: the ledger's events delivered to the outside world, and the answers brought back.

``adapters.outbox`` is the delivery engine (at-least-once, idempotency keys,
backoff, dead letters) and the contract every adapter implements;
``adapters.sms`` and ``adapters.email`` reach debtors; ``adapters.render``
renders templates and disclosures; ``adapters.config`` reads ``[adapters.*]``.
``adapters.outbox.wiring.build_outbox`` builds the engine from the config file.

This module imports nothing: ``python -m adapters.debt_sale.verify`` must run on
the standard library alone.
"""
