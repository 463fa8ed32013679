"""Chaos (issue 11): 100 clients reconnecting at random points with their last ids, while writers
append, rotate by rename (also in bursts of several within milliseconds) and by copytruncate, and
tailsse is killed with SIGKILL and started again: every client receives exactly what was written to
each of its sources, in order, no gap, no duplicate.

Three runs of the same harness (tests/soak.py):
- rename rotations and bursts, with kill -9 restarts;
- every kind of rotation, copytruncate included, tailsse up the whole time;
- every kind of rotation with kill -9 restarts. (It was an expected failure until the interleavings
  it found were closed, each now with its own test in tests/test_restart.py or tests/test_events.py:
  marker ids naming a new file's start, a resumed part dropped from composite ids, the copies of
  later truncations not read, a rotated file rewritten while down passed over, a first copy looked
  for by one fingerprint only or while a rotation shifted the copies.)

`make test` runs them short (about 15 s of writing each); `make soak` scales them by SOAK_SECONDS,
SOAK_CLIENTS, SOAK_SOURCES, SOAK_RESTARTS, SOAK_RATE and SOAK_SEED (see tests/soak.py). The seed
and figures are printed with each result; a failure names the first divergence of each client, the
ids around it, the writers' rotations and the variables to run it again.
"""

from __future__ import annotations

import pytest

from soak import Chaos, ChaosConfig


@pytest.mark.parametrize("rotations,restarts", [
    pytest.param(("rename", "burst"), True, id="rename-bursts-kill9"),
    pytest.param(("rename", "burst", "copytruncate"), False, id="all-rotations-live"),
    pytest.param(("rename", "burst", "copytruncate"), True, id="all-rotations-kill9"),
])
def test_chaos(tailsse, logdir, rotations, restarts):
    config = ChaosConfig.from_env(rotations=rotations)
    if not restarts:
        config.restarts = 0
    # A small shared buffer, so clients also catch up by reading the files themselves.
    chaos = Chaos(lambda files: tailsse(files, shared_buffer_bytes=64 << 10, retry=200, extra=["--log-level", "debug"]), logdir, config)
    result = chaos.run()
    print(result.summary())
    assert result.ok, result.report()
    assert result.restarts == config.restarts
    if config.seconds >= 10:
        # Every source rotated in each way (the first rotations of a source are one of each kind).
        assert all(all(w.counts[k] for k in config.rotations) for w in result.writers.values()), \
            [w.counts for w in result.writers.values()]
