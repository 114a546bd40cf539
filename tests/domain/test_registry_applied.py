"""A discrete result names a parameter of the agreement's registry: an unknown name is refused
naming the row and field, unless the agreement's terms say ``unregistered: flag``."""

from __future__ import annotations

from ledger.errors import ValidationFailed
from ledger.timeutil import now_utc
from tests.support.agreements import propose_and_sign, refused
from tests.support.batches import define_parameter, discrete_records, register_batch, submit_data
from tests.support.world import World, agreement_terms

BATCH = "NWB101-24-071"


def strict_terms() -> dict[str, object]:
    terms = agreement_terms()
    terms.pop("unregistered", None)
    return terms


def results(*names: str) -> list[dict[str, object]]:
    template = discrete_records("G", sampled_at=now_utc())[0]
    return [{**template, "id": f"G-{i}", "parameter": name} for i, name in enumerate(names, 1)]


def test_a_result_for_a_parameter_that_does_not_exist_is_refused(world: World) -> None:
    agreement = propose_and_sign(world, terms=strict_terms())
    register_batch(world, agreement, BATCH)
    define_parameter(world, agreement, "viable cell density, day 7")
    with refused(world, ValidationFailed, "payload.records[1].parameter"):
        submit_data(
            world, BATCH, "discrete", results("viable cell density, day 7", "titre at harvst")
        )


def test_a_result_for_a_registered_parameter_is_stored(world: World) -> None:
    agreement = propose_and_sign(world, terms=strict_terms())
    register_batch(world, agreement, BATCH)
    define_parameter(world, agreement, "viable cell density, day 7")
    stored = submit_data(world, BATCH, "discrete", results("viable cell density, day 7"))
    assert stored.position == world.ledger.head()


def test_terms_that_flag_unregistered_results_store_them(world: World) -> None:
    agreement = propose_and_sign(world, terms={**strict_terms(), "unregistered": "flag"})
    register_batch(world, agreement, BATCH)
    stored = submit_data(world, BATCH, "discrete", results("titre at harvst"))
    assert stored.position == world.ledger.head()


def test_terms_naming_another_treatment_of_unregistered_results_are_refused(
    world: World,
) -> None:
    with refused(world, ValidationFailed, "payload.terms.unregistered"):
        propose_and_sign(world, terms={**strict_terms(), "unregistered": "ignore"})


def test_an_identifier_with_a_trailing_newline_is_refused(world: World) -> None:
    agreement = propose_and_sign(world)
    register_batch(world, agreement, BATCH)
    record = {**results("viable cell density, day 7")[0], "id": "G-1\n"}
    with refused(world, ValidationFailed, "payload.records[0].id"):
        submit_data(world, BATCH, "discrete", [record])


def test_a_value_with_digits_of_another_script_is_refused(world: World) -> None:
    agreement = propose_and_sign(world)
    register_batch(world, agreement, BATCH)
    record = {**results("viable cell density, day 7")[0], "value": "١٨.٤"}
    with refused(world, ValidationFailed, "payload.records[0].value"):
        submit_data(world, BATCH, "discrete", [record])
