"""The project's benchmark: ``python -m bench.run`` writes ``bench/RESULTS.md``.

Sections: sending throughput against the transport ceiling, peak memory of a large
send, the cost of growth (pages and the scheduler poll at 10k and 100k guests), and
the UI while a batch sends. Every function takes its sizes as arguments, so the test
suite runs the same code at tiny sizes (``tests/bench/test_smoke.py``).
"""
