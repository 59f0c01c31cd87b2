"""GET /v1/predictions has a Firestore composite index for every combination of its filters."""

from __future__ import annotations

from itertools import combinations

from prediction_api.adapters import LISTING_FILTERS, LISTING_ORDER, LISTING_OWNER

from .conftest import MODULES_DIR, dynamic_blocks, load_module, only, resources

FIRESTORE = load_module(MODULES_DIR / "firestore")


def _declared_indexes() -> set[tuple[tuple[str, str], ...]]:
    """The field lists (path, order) of the listing indexes, as Terraform expands them:
    the dynamic equality fields of each for_each entry, then the static ordering field."""
    index = resources(FIRESTORE, "google_firestore_index")[("google_firestore_index", "listing")]
    assert index["for_each"] == "${local.listing_indexes}"
    assert index["collection"] == "${var.predictions_collection}"
    dynamic = dynamic_blocks(index)["fields"]
    assert dynamic["for_each"] == "${each.value}"
    content = only(dynamic["content"])
    assert content["field_path"] == "${fields.value}"
    ordering = only(index["fields"])
    listing = {}
    for block in FIRESTORE["locals"]:
        listing.update(block.get("listing_indexes", {}))
    last = ((ordering["field_path"], ordering["order"]),)
    return {tuple((field, content["order"]) for field in fields) + last for fields in listing.values()}


def _queries() -> set[tuple[tuple[str, str], ...]]:
    """What FirestorePredictionStore.list_owned asks for: owner, any subset of the filters
    (in their order), newest first."""
    wanted = set()
    for size in range(len(LISTING_FILTERS) + 1):
        for subset in combinations(LISTING_FILTERS, size):
            wanted.add(tuple((field, "ASCENDING") for field in (LISTING_OWNER, *subset))
                       + ((LISTING_ORDER, "DESCENDING"),))
    return wanted


def test_every_listing_query_has_its_composite_index_and_no_index_is_unused():
    assert _declared_indexes() == _queries()

