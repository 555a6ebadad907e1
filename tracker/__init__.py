"""odnos: a web analytics tracker with a CRM add-on (collector, storage, CRM engine, CLI)."""

__version__ = "0.1.0"
