"""Benchmarks for customer-manager: scripts that print numbers, not timed tests.

``python -m bench.run`` (``make bench``) starts the daemon against a fresh MySQL database,
Redis DB 14 and a private RabbitMQ vhost, drives it with a closed-loop RPC load generator in
a separate process, compares every scenario with a bare pika echo server at the same number
of requests in flight, and writes ``bench/RESULTS.md``.
"""
