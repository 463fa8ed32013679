"""Chaos (issue 11): 100 clients reconnecting at random points with their last ids, while writers
append, rotate by rename (also in bursts of several within milliseconds) and by copytruncate, and
tailsse is killed with SIGKILL and started again: every client receives exactly what was written to
each of its sources, in order, no gap, no duplicate.

`make test` runs the short version (about 15 s of writing, 2 restarts); `make soak` the same test
scaled by SOAK_SECONDS, SOAK_CLIENTS, SOAK_SOURCES, SOAK_RESTARTS, SOAK_RATE and SOAK_SEED (see
tests/soak.py). The seed and figures are printed with the result; a failure names the first
divergence of each client, the ids around it and the seed to run it again.
"""

from __future__ import annotations

from soak import Chaos, ChaosConfig


def test_chaos_kill9_rotations_and_reconnects(tailsse, logdir):
    config = ChaosConfig.from_env()
    # A small shared buffer, so clients also catch up by reading the files themselves.
    chaos = Chaos(lambda files: tailsse(files, shared_buffer_bytes=64 << 10, retry=200), logdir, config)
    result = chaos.run()
    print(result.summary())
    assert result.ok, result.report()
    writers = result.writers.values()
    assert result.restarts == config.restarts
    if config.seconds >= 10:
        # Every source rotated in each way (the first three rotations of a source are one of each).
        assert all(w.counts["rename"] and w.counts["burst"] and w.counts["copytruncate"] for w in writers), \
            [w.counts for w in writers]
