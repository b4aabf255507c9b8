"""Demo data: fictional shipments in every stage and hold, so anyone can try the bot offline.

People and numbers are invented (UK numbers from the +44 7700 900xxx drama range; Kenyan numbers
in an unassigned +254 700 000 xxx block).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select

from storage import repo
from storage.db import write_session
from storage.models import Hold, Shipment

DEMO_STAFF = "console:staff"
DEMO_CUSTOMER = "console:customer"


@dataclass(frozen=True)
class DemoShipment:
    refs: tuple[tuple[str, str], ...]  # (kind, value)
    stage: str
    consignee: str
    goods: str
    packages: int
    transport: str | None = None
    port: str | None = None
    eta_days: float | None = None
    holds: tuple[str, ...] = ()
    updated_hours_ago: float = 3
    customer: str | None = None
    public_note: str | None = None


DEMO_SHIPMENTS = (
    DemoShipment(
        (("container", "MRKU2200193"),),
        "booked",
        "Amani Wekesa (fictional)",
        "Household goods",
        40,
        "MAERSK KENSINGTON 247S",
        "Mombasa",
        24,
        updated_hours_ago=20,
    ),
    DemoShipment(
        (("container", "MSCU5861630"), ("bl", "MEDUHG271461")),
        "in_transit",
        "Baraka Otieno (fictional)",
        "Used car parts",
        85,
        "MSC AURORA FA412R",
        "Mombasa",
        9,
    ),
    DemoShipment(
        (("awb", "17612345675"),),
        "in_transit",
        "Chebet Kiprono (fictional)",
        "Laptops",
        6,
        "EK 719",
        "JKIA",
        1.5,
        updated_hours_ago=5,
    ),
    DemoShipment(
        (("container", "CMAU1639120"), ("entry", "24MBAIM400448715")),
        "arrived",
        "Dalia Njeri (fictional)",
        "Shoes",
        120,
        "CMA CGM TAGE 0XF3MS",
        "Mombasa",
        -1,
    ),
    DemoShipment(
        (("container", "HLXU8123451"), ("entry", "23NBOIM401172243")),
        "declared",
        "Eliud Mwangi (fictional)",
        "Solar panels",
        30,
        "HAPAG BERLIN 2245W",
        "ICD Embakasi",
        -3,
    ),
    DemoShipment(
        (("container", "MSKU9070323"), ("entry", "26MBAIM406532497")),
        "assessed",
        "Faith Achieng (fictional)",
        "Textiles",
        200,
        "MAERSK KENSINGTON 244S",
        "Mombasa",
        -4,
        customer=DEMO_CUSTOMER,
        public_note="The e-slip was sent to you by email on Friday.",
    ),
    DemoShipment(
        (("container", "MSKU9070323"), ("entry", "26MBAIM406532511")),
        "paid",
        "Gitau Kamau (fictional)",
        "Kitchen appliances",
        14,
        "MAERSK KENSINGTON 244S",
        "Mombasa",
        -4,
    ),
    DemoShipment(
        (("awb", "70640318655"),),
        "declared",
        "Halima Yusuf (fictional)",
        "Cosmetics",
        12,
        "KQ 101",
        "JKIA",
        -2,
        holds=("kebs",),
    ),
    DemoShipment(
        (("container", "TGHU7345017"), ("entry", "26MBAIM406532503")),
        "declared",
        "Imani Chege (fictional)",
        "Electronics",
        60,
        "ONE HARMONY 031W",
        "Mombasa",
        -6,
        holds=("inspection", "docs"),
    ),
    DemoShipment(
        (("container", "OOLU4500212"), ("entry", "25MBAIM400998877")),
        "assessed",
        "Juma Hassan (fictional)",
        "Medicines",
        25,
        "OOCL NAIROBI 118S",
        "Mombasa",
        -8,
        holds=("agency", "amend"),
    ),
    DemoShipment(
        (("container", "CSQU3054383"), ("entry", "26MBAIM406532520")),
        "released",
        "Kendi Mutua (fictional)",
        "Furniture",
        18,
        "COSCO SHIPPING 077W",
        "Mombasa",
        -10,
        updated_hours_ago=1,
    ),
    DemoShipment(
        (("awb", "12555501235"),),
        "collected",
        "Lemayian Sankale (fictional)",
        "Spare parts",
        3,
        "BA 065",
        "JKIA",
        -5,
        updated_hours_ago=30,
    ),
    DemoShipment(
        (("container", "MEDU3170580"), ("entry", "26MBAIM406532538")),
        "delivered",
        "Mercy Wanjiru (fictional)",
        "Books",
        90,
        "MSC ANNA 2311R",
        "Mombasa",
        -20,
        updated_hours_ago=72,
    ),
)


def seed_demo(engine: Engine, *, now: datetime) -> bool:
    """Seed the demo shipments and staff if the store is empty; False when it already has data."""
    with write_session(engine) as session:
        if session.execute(select(func.count()).select_from(Shipment)).scalar_one():
            return False
        repo.ensure_admins(session=session, addresses=[DEMO_STAFF], now=now)
        for item in DEMO_SHIPMENTS:
            updated = now - timedelta(hours=item.updated_hours_ago)
            shipment = repo.create_shipment(session=session, now=updated, author=DEMO_STAFF, stage=item.stage)
            assert shipment.id is not None
            shipment.consignee, shipment.goods, shipment.packages = item.consignee, item.goods, item.packages
            shipment.transport, shipment.port = item.transport, item.port
            if item.eta_days is not None:
                shipment.eta = now + timedelta(days=item.eta_days)
            if item.stage == "released":
                shipment.release_number = "CRM-2026-0412"
            for kind, value in item.refs:
                repo.link_reference(session=session, shipment_id=shipment.id, kind=kind, value=value)
            for kind in item.holds:
                session.add(Hold(shipment_id=shipment.id, kind=kind, raised_at=updated, raised_by=DEMO_STAFF))
            repo.add_event(
                session=session,
                shipment_id=shipment.id,
                at=updated,
                author=DEMO_STAFF,
                action="stage",
                detail=item.stage,
            )
            if item.public_note:
                repo.add_event(
                    session=session,
                    shipment_id=shipment.id,
                    at=updated,
                    author=DEMO_STAFF,
                    action="note",
                    note=item.public_note,
                    public=True,
                )
            if item.customer:
                contact = repo.get_or_create_contact(session=session, address=item.customer, now=now)
                assert contact.id is not None
                repo.link_contact(
                    session=session, shipment_id=shipment.id, contact_id=contact.id, consent_at=now
                )
        return True


DEMO_GUIDE = """\
cargobot demo: fictional shipments on a local SQLite database. Try, as a customer:
  where is MSKU 907032-3?          (shared container: two customers' goods)
  26MBAIM406532497                  (your own entry: duty assessed, with your details)
  awb 706-40318655                  (air cargo held for KEBS verification)
  TGHU7345017                       (inspection and documents holds)
  CSQU3O54383                       (a typo: the letter O instead of zero)
  habari, kontena CMAU1639120 iko wapi?   (Kiswahili)
  ALERT TGHU7345017   then   STOP   then   START
  AGENT                             (ask for a person)
Speak as staff with ':as console:staff', then for example:
  /help    /find TGHU7345017    /release TGHU7345017 CRM-2026-0500
  /maintenance Please be advised that there will be a scheduled maintenance of iCMS from Saturday,
     May 17, 2031, at 10 pm to Sunday, May 18, 2031, at 6 am.
Alerts to console contacts appear here when they fall due (staff changes wait ALERT_GRACE_SECONDS).
':as console:customer' to go back; ':quit' to leave.
"""
