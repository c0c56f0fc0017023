"""Seeded fuzzing of the real proxy from both sides: the short CI pass of ``Tests/Fuzz/fuzz_proxy.py``.

Per mode (pass-through: ocpp1.6 and ocpp2.0.1, half of the frames each; translation: ocpp1.6 charger on an
ocpp2.0.1 CSMS) and side (the hostile peer is the charger, or the CSMS), ``OCPP_FUZZ_FRAMES`` (default 10,000)
mutated frames go through one proxy while a well-behaved charger runs its session beside them. A run passes
when the proxy never exits and ``/readyz`` stays 200, its RSS stays within start + 150 MB, every frame a peer
receives is a well-formed OCPP-J frame (schema-valid in translation mode), every well-formed hostile CALL is
answered, and every exchange of the well-behaved charger succeeds with the right answer. See the driver's
docstring for the full list and for the long run (10^6 frames per mode and side).

``OCPP_FUZZ_SEED`` changes the seed (the failure message names it, so a failing CI seed can be rerun with
``fuzz_proxy.py --seed``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

FUZZ_DIR = Path(__file__).resolve().parents[1] / "Fuzz"
if str(FUZZ_DIR) not in sys.path:
    sys.path.insert(0, str(FUZZ_DIR))

import fuzz_proxy  # noqa: E402

FRAMES = int(os.environ.get("OCPP_FUZZ_FRAMES", "10000"))
SEED = os.environ.get("OCPP_FUZZ_SEED", "20260301")


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("side", fuzz_proxy.SIDES)
@pytest.mark.parametrize("mode", fuzz_proxy.MODES)
async def test_seeded_hostile_frames_neither_crash_the_proxy_nor_reach_the_other_side(proxy_binary, tmp_path,
                                                                                     mode, side):
    results = await fuzz_proxy.fuzz(proxy_binary, tmp_path, SEED, [mode], [side], FRAMES, log=lambda *_: None)
    report = "\n".join(fuzz_proxy.format_summary(r) for r in results)
    where = f"seed {SEED}, {FRAMES} frames, {mode}/{side}; rerun: Tests/Fuzz/fuzz_proxy.py --seed {SEED} " \
            f"--frames {FRAMES} --modes {mode} --sides {side}\n{report}"

    assert sum(r["crashes"] for r in results) == 0, f"the proxy crashed ({where})"
    assert all(r["ok"] for r in results), f"a fuzz check failed ({where})"
    assert sum(r["frames_sent"] for r in results) >= FRAMES, f"fewer frames were sent than asked ({where})"
    for r in results:
        # a run in which nothing got through or nothing was refused tested nothing
        assert r["forwarded_total"] > 0, f"no frame reached the receiving peer ({where})"
        assert any(k.startswith("CALLERROR") for k in r["tracked_call_outcomes"]), \
            f"the proxy refused no hostile CALL ({where})"
        assert r["honest"].get("ok", 0) >= 12, f"the well-behaved charger ran less than two sessions ({where})"
        assert r["rss_max_mb"] <= r["rss_bound_mb"], f"RSS beyond its bound ({where})"
