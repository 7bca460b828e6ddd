"""The choices the pages leave to the user, through AppTest: the error rates that follow the overall rate
unless moved by hand.

The module has a data root of its own (the fixtures of tests/test_app_pages.py).
"""

from __future__ import annotations

from orchestrator.generation.catalogue import KINDS
from orchestrator.generation.schema import TABLE_NAMES
from tests import test_app_pages
from tests.test_app_pages import signed_in

# alice and bob in a data root of this module's own
data_dir = test_app_pages.data_dir


def follow_their_defaults(at, rate: float) -> None:
    """Every kind and table rate stands at its default for the overall ``rate``."""
    assert at.slider(key="error_rate").value == rate
    kinds = {kind: at.slider(key=f"kind_{kind}").value for kind in KINDS}
    assert kinds == {kind: round(rate * info.weight, 3) for kind, info in KINDS.items()}
    assert {table: at.slider(key=f"table_{table}").value for table in TABLE_NAMES} == dict.fromkeys(
        TABLE_NAMES, rate
    )


def test_generate_rates_follow_the_overall_rate_whatever_the_order_of_events():
    at = signed_in("alice", "pages/generate.py")
    follow_their_defaults(at, 0.3)
    for rate in (0.29, 0.28, 0.27, 0.26, 0.22):  # quick steps, one run each
        at.slider(key="error_rate").set_value(rate).run()
    follow_their_defaults(at, 0.22)
    for rate in (0.23, 0.24, 0.25, 0.26, 0.27):  # quicker than the runs: the last one counts
        at.slider(key="error_rate").set_value(rate)
    at.run()
    follow_their_defaults(at, 0.27)

    # a browser that had not drawn the last values yet sends its old ones with the next step of the overall
    # slider: the user did not move those sliders, so they follow still
    at.slider(key="error_rate").set_value(0.21)
    at.slider(key="kind_missing").set_value(0.026)
    at.slider(key="table_orders").set_value(0.26)
    at.run()
    follow_their_defaults(at, 0.21)

    at.slider(key="error_rate").set_value(0.0).run()
    follow_their_defaults(at, 0.0)
    for table in at.selectbox(key="preview_table").options:
        at.selectbox(key="preview_table").set_value(table).run()
        assert len(at.dataframe) == 1, table  # the rows, and no injected error to list


def test_generate_keeps_a_rate_moved_by_hand_while_the_others_follow():
    at = signed_in("alice", "pages/generate.py")
    at.slider(key="kind_typo").set_value(0.25).run()
    at.slider(key="table_customers").set_value(0.0).run()
    for rate in (0.5, 0.1, 0.5):
        at.slider(key="error_rate").set_value(rate).run()
        assert (at.slider(key="kind_typo").value, at.slider(key="table_customers").value) == (0.25, 0.0)
        assert at.slider(key="kind_missing").value == round(rate * KINDS["missing"].weight, 3)
        assert at.slider(key="table_orders").value == rate
