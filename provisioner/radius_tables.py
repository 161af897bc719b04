"""The stock FreeRADIUS 3 SQL tables, as far as this daemon reads and writes them.

They are created by the migration from FreeRADIUS's own ``schema.sql`` (shipped in
``radius_schema/``) so their names and columns are exactly the stock ones; these
``Table`` objects only describe the columns we touch, and are never used to create.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table
from sqlalchemy.dialects.postgresql import INET

radius_metadata = MetaData()
# The stock PostgreSQL schema stores addresses as ``inet``; SQLite as text.
Address = String().with_variant(INET(), "postgresql")


def _attr_table(name: str, owner: str) -> Table:
    return Table(
        name,
        radius_metadata,
        Column("id", Integer, primary_key=True),
        Column(owner, String),
        Column("attribute", String),
        Column("op", String),
        Column("value", String),
    )


radcheck = _attr_table("radcheck", "username")
radreply = _attr_table("radreply", "username")
radgroupcheck = _attr_table("radgroupcheck", "groupname")
radgroupreply = _attr_table("radgroupreply", "groupname")

radusergroup = Table(
    "radusergroup",
    radius_metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String),
    Column("groupname", String),
    Column("priority", Integer),
)

nas = Table(
    "nas",
    radius_metadata,
    Column("id", Integer, primary_key=True),
    Column("nasname", String),
    Column("shortname", String),
    Column("type", String),
    Column("ports", Integer),
    Column("secret", String),
    Column("server", String),
    Column("community", String),
    Column("description", String),
)

radacct = Table(
    "radacct",
    radius_metadata,
    Column("radacctid", BigInteger, primary_key=True),
    Column("acctsessionid", String),
    Column("acctuniqueid", String),
    Column("username", String),
    Column("nasipaddress", Address),
    Column("acctstarttime", DateTime(timezone=True)),
    Column("acctstoptime", DateTime(timezone=True)),
    Column("acctupdatetime", DateTime(timezone=True)),
    Column("acctinputoctets", BigInteger),
    Column("acctoutputoctets", BigInteger),
    Column("framedipaddress", Address),
    Column("callingstationid", String),
    Column("acctterminatecause", String),
)
