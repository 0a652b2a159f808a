"""Debt sale: the sale file a debt buyer receives, and the buyer's standalone verifier.

``export`` selects and screens the accounts, writes ``accounts.csv``, one history
bundle per account (``bundle``) and a signed manifest; ``verify`` checks such a
directory with the standard library only.

Nothing is imported here on purpose: ``python -m adapters.debt_sale.verify`` must
run without the ledger, msgpack or eventsourcing installed.
"""
