"""The link protocol's pure rules, run in a deterministic simulation (yixian.sync.simulation):
a thousand seeded schedules of loss, duplication, reordering, partitions, restarts and
false claims converge with bounded extra traffic; a rule switched off is caught, and the
failing schedule replays exactly from its seed. ``make simulate`` runs 100,000."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from yixian.sync.simulation import (
    Schedule,
    ScheduleFailed,
    Simulation,
    main,
    run_schedule,
)

SCHEDULES = 1000


def test_a_thousand_schedules_converge_with_bounded_extra_traffic() -> None:
    started = time.perf_counter()
    failures: list[str] = []
    seen: Counter[str] = Counter()
    for seed in range(SCHEDULES):
        try:
            result = run_schedule(seed)
        except ScheduleFailed as failure:
            failures.append(str(failure))
            continue
        schedule, traffic = result.schedule, result.traffic
        seen["three nodes"] += schedule.nodes == 3
        seen["partitions"] += schedule.partitions
        seen["restarts"] += schedule.restarts
        seen["databases restored"] += traffic.new_epochs
        seen["lost"] += traffic.lost
        seen["refused claims"] += traffic.refused
        for kind, count in traffic.extra.items():
            seen[kind] += count
    elapsed = time.perf_counter() - started
    assert not failures, f"{len(failures)} schedules failed; the first:\n{failures[0]}"
    # the schedules exercise every part of the protocol, not only the easy paths
    for part in (
        "three nodes",
        "partitions",
        "restarts",
        "databases restored",
        "lost",
        "refused claims",
        "replay_request",
        "replayed",
        "digest",
        "digest_entries",
        "resend_request",
        "resent_group",
        "relay_resent",
        "replica_returned",
    ):
        assert seen[part] > 0, f"no schedule exercised {part}: {dict(seen)}"
    print(f"{SCHEDULES} schedules in {elapsed:.1f} s ({SCHEDULES / elapsed:.0f} a second)")


def test_a_schedule_replays_exactly() -> None:
    first, again = run_schedule(42), run_schedule(42)
    assert first.trace_hash == again.trace_hash
    assert first.traffic == again.traffic
    assert first.converged_at == again.converged_at
    assert run_schedule(43).trace_hash != first.trace_hash


@pytest.mark.parametrize("rule", ["claims", "reach", "settle", "backoff", "stale", "epochs"])
def test_a_broken_rule_fails_a_schedule_that_replays_from_its_seed(rule: str) -> None:
    """Switch one rule off; some schedule fails, its message names the seed and the
    command that replays it, and running that seed again fails the same way, event for
    event. With the rule intact the same schedule converges."""
    for seed in range(200):
        broken = Simulation(Schedule.from_seed(seed, rule))
        try:
            broken.run()
        except ScheduleFailed as failure:
            message, trace = str(failure), broken.hash.hexdigest()
            break
    else:
        pytest.fail(f"no schedule noticed that the {rule} rule was broken")
    assert f"seed {seed}:" in message
    assert f"--seed {seed} --broken {rule}" in message
    replayed = Simulation(Schedule.from_seed(seed, rule))
    with pytest.raises(ScheduleFailed) as again:
        replayed.run()
    assert str(again.value) == message
    assert replayed.hash.hexdigest() == trace
    run_schedule(seed)  # the same schedule with every rule in force


def test_the_claims_rule_keeps_a_forged_digest_from_switching_detection_off() -> None:
    """The issue's case: a digest claiming far more than was sent made the link look
    healthy with a huge received-up-to. Without the claim check the simulation sees it."""
    for seed in range(200):
        try:
            run_schedule(seed, "claims")
        except ScheduleFailed as failure:
            if "is healthy: received up to" in str(failure):
                break
    else:
        pytest.fail("no schedule showed a forged claim passing for received numbers")


def test_a_stale_repair_copy_never_rolls_a_replica_back() -> None:
    """The rule of ADR 16: a repair copy the owner sent before the event that set the
    replica is stale. Without it about one schedule in eleven moves a replica back to an
    older version (and announces it); with it, none does."""
    reasons = []
    for seed in range(200):
        try:
            run_schedule(seed, "stale")
        except ScheduleFailed as failure:
            reasons.append(str(failure))
        assert run_schedule(seed).traffic.rolled_back == 0
    assert len(reasons) >= 5
    assert all("went back from v" in reason for reason in reasons)


def test_a_restored_database_numbers_in_a_new_epoch() -> None:
    """A node whose numbering is lost numbers from 1 again; in the same epoch two events
    carry one number (the simulation sees it), in a new one its partners follow it."""
    for seed in range(200):
        schedule = Schedule.from_seed(seed)
        if schedule.restores:
            break
    result = run_schedule(seed)
    assert result.traffic.new_epochs >= 1
    with pytest.raises(ScheduleFailed, match="names events"):
        run_schedule(seed, "epochs")


def test_the_command_line_replays_one_schedule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seed", "7"]) == 0
    out = capsys.readouterr().out
    assert "deliver" in out
    assert "converged" in out
    assert main(["--seed", "0", "--broken", "settle"]) == 1
    assert "replay it: uv run --frozen python -m yixian.sync.simulation --seed 0" in (
        capsys.readouterr().out
    )


@pytest.mark.slow
def test_a_hundred_thousand_schedules_converge() -> None:
    assert main(["--schedules", "100000", "--jobs", "2"]) == 0
