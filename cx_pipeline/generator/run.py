"""``generate``: chunk after chunk of persons, each written straight to the period files.

Simulating a chunk (numpy) and writing the previous one (Arrow string kernels and file writes) both run
mostly outside the GIL, so one writer thread overlaps them on a second core. There is only ever one writer,
fed in chunk order, so the files come out the same whatever the timing; and at most one chunk waits for it,
which bounds memory.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from cx_pipeline.contracts import CONTRACTS
from cx_pipeline.generator import text
from cx_pipeline.generator.config import CHUNK_PERSONS, STAGES, Clock, GeneratorConfig
from cx_pipeline.generator.delivery import DeliveryPlan, plan_delivery
from cx_pipeline.generator.engagement import simulate_engagement
from cx_pipeline.generator.ids import IdAllocator
from cx_pipeline.generator.journeys import Journeys, simulate_journeys
from cx_pipeline.generator.population import MAX_PERSONS, Persons, draw_persons
from cx_pipeline.generator.records import ColumnRecords, IdentifierSink
from cx_pipeline.generator.summary import FileSummary, GenerationSummary, SourceSummary
from cx_pipeline.generator.writer import LandingWriter, TruthWriter, clear_owned_landing_files

# The default sample must show every kind of messiness at least this often.
MINIMUM_ERASURES = 2
MINIMUM_MALFORMED_PER_SOURCE = 1


@dataclass
class ChunkOutput:
    """Everything one chunk hands to the writer."""

    plans: list[DeliveryPlan]
    persons: list[pa.Array]  # persons.csv columns
    identifiers: pa.Table
    crm_latest: list[pa.Array]  # crm_contacts.csv of the truth: person_id, then the latest version's fields
    stages: np.ndarray
    erased: int
    orders: int


@dataclass
class Totals:
    stages: np.ndarray
    erased: int = 0
    orders: int = 0


def generate(config: GeneratorConfig, progress: bool = True) -> GenerationSummary:
    """Write the landing files and the ground truth for ``config``; same config, same bytes."""
    if config.customers > MAX_PERSONS:
        raise ValueError(f"at most {MAX_PERSONS:,} customers (person ids have seven digits)")
    if config.seed < 0:
        raise ValueError("the seed must not be negative")
    started = time.perf_counter()
    clock = Clock.from_config(config)
    clear_owned_landing_files(config.landing_dir)
    landing = LandingWriter(config.landing_dir, clock, by_month=config.file_period == "month")
    truth = TruthWriter(config.truth_dir)
    ids = IdAllocator(salt=config.seed)
    totals = Totals(stages=np.zeros(len(STAGES), dtype=np.int64))

    def write(output: ChunkOutput) -> None:
        for plan in output.plans:
            truth.add_malformed(landing.write(plan))
        truth.add_persons(output.persons)
        truth.add_identifiers(output.identifiers)
        truth.add_crm_contacts(output.crm_latest)
        totals.stages += output.stages
        totals.erased += output.erased
        totals.orders += output.orders

    with (
        tqdm(total=config.customers, unit="persons", desc="cx360 generate", disable=not progress) as bar,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="cx360-writer") as writer,
    ):
        in_flight: Future | None = None
        for chunk_index, first in enumerate(range(0, config.customers, CHUNK_PERSONS)):
            size = min(CHUNK_PERSONS, config.customers - first)
            output = _simulate_chunk(config, clock, ids, chunk_index, first, size)
            if in_flight is not None:
                in_flight.result()
                bar.update(CHUNK_PERSONS)
            in_flight = writer.submit(write, output)
            del output
        if in_flight is not None:
            in_flight.result()
            bar.update(config.customers - bar.n)
    landing.publish()
    summary = GenerationSummary(
        config=config,
        persons=config.customers,
        stages={stage: int(count) for stage, count in zip(STAGES, totals.stages, strict=True)},
        erased=totals.erased,
        orders=totals.orders,
        identifiers=0,
        sources={source: _source_summary(source, landing) for source in CONTRACTS},
        elapsed_seconds=0.0,
    )
    identifier_rows = truth.finish(summary.to_json(), initial_state(config, ids))
    return replace(summary, identifiers=identifier_rows, elapsed_seconds=time.perf_counter() - started)


def initial_state(config: GeneratorConfig, ids: IdAllocator) -> dict:
    """What ``generate_next_day`` needs to continue this population (truth/state.json)."""
    return {
        "seed": config.seed,
        "customers": config.customers,
        "persons": config.customers,
        "start_date": config.start_date.isoformat(),
        "base_end_date": config.end_date.isoformat(),
        "end_date": config.end_date.isoformat(),
        "malformed_share": config.malformed_share,
        "ids_used": dict(sorted(ids.used.items())),
        "days": [],
    }


def latest_contact_versions(crm: ColumnRecords, persons: Persons) -> list[pa.Array]:
    """Per CRM contact its latest version (re-exports follow the first export): person_id, then the fields."""
    rows = pa.table({"contact_id": crm.columns["contact_id"], "row": pa.array(np.arange(len(crm)))})
    latest = np.sort(rows.group_by("contact_id").aggregate([("row", "max")])["row_max"].to_numpy())
    index = pa.array(latest)
    return [
        persons.person_id.take(pa.array(crm.person[latest])),
        *(column.take(index) for column in crm.columns.values()),
    ]


def _simulate_chunk(
    config: GeneratorConfig, clock: Clock, ids: IdAllocator, chunk_index: int, first: int, size: int
) -> ChunkOutput:
    # One independent random stream per chunk: chunks do not depend on each other's draws.
    rng = np.random.default_rng([config.seed, chunk_index])
    first_chunk = chunk_index == 0
    persons = draw_persons(rng, first, size, salt=config.seed)
    sink = IdentifierSink()
    journeys = simulate_journeys(rng, persons, clock, ids, sink)
    engagement = simulate_engagement(
        rng, persons, journeys, clock, ids, sink, minimum_erasures=MINIMUM_ERASURES if first_chunk else 0
    )
    minimum = MINIMUM_MALFORMED_PER_SOURCE if first_chunk else 0
    by_source = {
        "crm_contacts": engagement.crm,
        "web_events": journeys.web,
        "cart_events": journeys.cart,
        "product_rejections": engagement.rejections,
        "support_interactions": engagement.tickets,
        "gdpr_consents": engagement.consents,
        "erasure_requests": engagement.erasures,
        "nps_responses": engagement.nps,
    }
    plans = [
        plan_delivery(rng, by_source[source], clock, config.malformed_share, minimum, ids)
        for source in CONTRACTS
    ]
    order_count = np.bincount(journeys.orders.person, minlength=persons.count)
    identifiers = sink.distinct()
    return ChunkOutput(
        plans=plans,
        persons=_person_truth(persons, journeys, order_count, engagement.erased),
        crm_latest=latest_contact_versions(engagement.crm, persons),
        identifiers=pa.table(
            {
                "identifier_type": identifiers["identifier_type"],
                "value": identifiers["value"],
                "person_id": persons.person_id.take(identifiers["person"]),
            }
        ),
        stages=np.bincount(persons.stage, minlength=len(STAGES)),
        erased=int(engagement.erased.sum()),
        orders=int(order_count.sum()),
    )


def _person_truth(
    persons: Persons, journeys: Journeys, order_count: np.ndarray, erased: np.ndarray
) -> list[pa.Array]:
    return [
        persons.person_id,
        text.lookup(STAGES, persons.stage),
        persons.first_name,
        persons.last_name,
        text.lookup(("US", "GB"), persons.country),
        text.utc_timestamp_strings(journeys.first_seen_ms),
        text.utc_timestamp_strings(journeys.last_activity_ms),
        text.integer_strings(order_count),
        text.lookup(("false", "true"), erased.astype(np.int64)),
    ]


def _source_summary(source: str, landing: LandingWriter) -> SourceSummary:
    tally = landing.tallies[source]
    return SourceSummary(
        source=source,
        clean=tally.clean,
        duplicates=tally.duplicates,
        malformed=tally.malformed,
        late=tally.late,
        files=tuple(FileSummary(path, t.rows, t.bytes) for path, t in sorted(tally.files.items())),
    )
