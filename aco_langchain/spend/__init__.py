"""Spend: the ledger that records what each call cost and holds budgets (``ledger``), and the
context budget that decides which messages are kept exactly or omitted (``context``)."""
