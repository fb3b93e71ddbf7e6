"""Fake CRMs shared by the tests and the benchmarks (never shipped: like ``benchmarks/`` and ``tests/``,
this package is imported from the repository root).

``testing.hubspot`` and ``testing.salesforce`` are HTTP servers on 127.0.0.1 written from the CRMs'
documentation; ``testing.memory`` is an in-memory connector for the sync service's logic;
``testing.crash_crm`` is a Celery app whose files connector is slow and observable on write.

It lives outside ``tests/`` so that ``benchmarks`` does not import the test suite, and outside
``benchmarks/`` so that the tests do not import the benchmarks: ``tests -> testing <- benchmarks``.
"""
