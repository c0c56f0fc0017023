"""State writes off the hot path (issue 17, point 3): the SQLite store checkpoints its WAL from a connection of its
own while the writer goes on committing. A proxy killed (SIGKILL) while such a checkpoint runs must still know every
transaction it acknowledged, continue each past every seqNo of an acknowledged message, and never give one seqNo to
two different messages -- with the seqNo written as the CSMS answers (``state.seqNoBlock: 1``, the default: a
charger's retry of a message it got no answer for may keep its seqNo, as the same message) and with seqNos reserved
in blocks (``seqNoBlock: 8``)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict

import pytest
from ocpp.v16 import call as call16

from test_translation_16_201 import T1, periodic_meter_value, start_transaction, transaction_events
from translation_support import connect_charger16, translating_proxy

CHARGERS = 6
# Kills until one lands inside a checkpoint (the proxy's debug log says which); each kill is checked.
ATTEMPTS = 8
# Acknowledged MeterValues before a kill: the WAL holds that many commits at least.
WRITES_BEFORE_KILL = 60


class CheckpointWatch:
    """Counts the store's "checkpoint started" and "checkpoint finished" debug lines in a proxy's stderr."""

    def __init__(self, proxy):
        self.path = proxy.stderr_path
        self.offset = 0
        self.started = 0
        self.finished = 0

    def poll(self) -> None:
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            data = log.read()
        data = data[: data.rfind(b"\n") + 1]  # whole lines only
        self.offset += len(data)
        self.started += data.count(b"state store: checkpoint started")
        self.finished += data.count(b"state store: checkpoint finished")

    @property
    def running(self) -> bool:
        return self.started > self.finished


def meter_values_call(transaction_id: int, wh: int):
    return call16.MeterValues(connector_id=1, transaction_id=transaction_id, meter_value=periodic_meter_value(T1, wh))


async def meter_values(charger, transaction_id: int, wh: int, unanswered: dict, identity: str,
                       acknowledged: list) -> None:
    """MeterValues one after the other, each after the answer to the one before; the one waiting for its answer
    is in ``unanswered`` (a charger sends it again after a reconnect), the answered ones are counted."""
    while True:
        wh += 10
        unanswered[identity] = wh
        await charger.cp.call(meter_values_call(transaction_id, wh), suppress=False)
        del unanswered[identity]
        acknowledged.append(wh)


@pytest.mark.parametrize("seq_no_block", [1, 8])
async def test_kill_during_a_checkpoint_keeps_every_acknowledged_transaction_and_repeats_no_seq_no(h, seq_no_block):
    proxy, csms = await translating_proxy(
        h, top={"state": {"checkpointInterval": "20ms", "seqNoBlock": seq_no_block}})
    identities = [f"CPCKPT{i}" for i in range(CHARGERS)]
    transaction_ids: dict[str, int] = {}  # acknowledged StartTransactions: the charger's 1.6 ids
    uuids: dict[str, str] = {}  # what the CSMS knows each of them as
    # every message the CSMS got, by transaction and seqNo, over all runs: one seqNo, one message
    messages: dict[str, dict[int, set]] = defaultdict(lambda: defaultdict(set))
    unanswered: dict[str, int] = {}  # the MeterValues each charger got no answer for (its Wh)
    next_wh = 1000
    kills_inside_a_checkpoint = 0

    def record(identity: str, session) -> None:
        for frame in session.recorder.received_frames():
            if frame[0] != 2 or frame[2] != "TransactionEvent":
                continue
            event = frame[3]
            uuid_ = event["transactionInfo"]["transactionId"]
            assert uuids.setdefault(identity, uuid_) == uuid_, \
                f"{identity}: the proxy forgot its transaction: {uuid_} after {uuids[identity]}"
            messages[uuid_][event["seqNo"]].add(json.dumps([event["eventType"], event.get("meterValue")],
                                                           sort_keys=True))

    for attempt in range(ATTEMPTS):
        pairs = [await connect_charger16(h, proxy, csms, identity) for identity in identities]
        for identity, (charger, _) in zip(identities, pairs):
            if identity not in transaction_ids:
                transaction_ids[identity] = await start_transaction(charger)
            if identity in unanswered:  # a charger sends a transaction message again until it is answered
                await charger.cp.call(meter_values_call(transaction_ids[identity], unanswered.pop(identity)),
                                      suppress=False)
        watch = CheckpointWatch(proxy)
        acknowledged: list = []
        next_wh += 100_000
        tasks = [asyncio.create_task(meter_values(charger, transaction_ids[identity], next_wh + 1000 * i, unanswered,
                                                  identity, acknowledged))
                 for i, (identity, (charger, _)) in enumerate(zip(identities, pairs))]
        deadline = time.monotonic() + 30
        while True:
            watch.poll()
            if watch.running and len(acknowledged) >= WRITES_BEFORE_KILL:
                break
            assert time.monotonic() < deadline, \
                f"no checkpoint seen running ({watch.started} started, {len(acknowledged)} acknowledged)"
            await asyncio.sleep(0.001)
        proxy.kill()  # SIGKILL: nothing is flushed on the way out
        for task in tasks:  # a CALL the kill left unanswered would wait for its timeout
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        watch.poll()
        if watch.running:
            kills_inside_a_checkpoint += 1
        for identity, (_, session) in zip(identities, pairs):
            await session.wait_closed()
            record(identity, session)
        proxy = await h.restart(proxy)
        if kills_inside_a_checkpoint >= 2:
            break

    assert kills_inside_a_checkpoint >= 1, f"none of {ATTEMPTS} kills landed inside a checkpoint"
    # After the last restart: every acknowledged transaction is known by its id (a retry first, as a charger does),
    # and a new message goes on past every seqNo the CSMS has seen.
    for identity in identities:
        charger, session = await connect_charger16(h, proxy, csms, identity)
        if identity in unanswered:
            await charger.cp.call(meter_values_call(transaction_ids[identity], unanswered.pop(identity)),
                                  suppress=False)
        await charger.cp.call(meter_values_call(transaction_ids[identity], 1), suppress=False)
        event = transaction_events(session)[-1]
        assert event["transactionInfo"]["transactionId"] == uuids[identity], \
            f"{identity}: the acknowledged transaction was lost"
        before = messages[uuids[identity]]
        assert before and event["seqNo"] > max(before), (identity, event["seqNo"], sorted(before))
        record(identity, session)
    for uuid_, by_seq_no in messages.items():
        shared = {seq_no: sorted(texts) for seq_no, texts in by_seq_no.items() if len(texts) > 1}
        assert not shared, f"transaction {uuid_}: one seqNo went to different messages: {shared}"
