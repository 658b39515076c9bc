"""Providers: building tier chat models and pricing them (``tiers``), fault classification
and retry/cooldown (``faults``), and the embedded local llama.cpp tier (``local``)."""
