"""The emulator's SOQL engine against an in-memory SQLite database built from the schema DDL.

Every test states a behaviour a Salesforce client sees through ``/query`` and ``/queryAll``:
which records come back, in which order and shape, and which 400 error a query earns.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from simple_salesforce.format import format_soql

from sandbox.salesforce.schema import SCHEMA, PicklistValue, create_table_sql, describe
from sandbox.salesforce.soql import (
    CompiledQuery,
    SoqlError,
    compile_query,
    id15_to_id18,
    parse_soql,
)

NOW = dt.datetime(2024, 2, 10, 12, 0, tzinfo=dt.UTC)


def _id(prefix: str, n: int) -> str:
    return id15_to_id18(f"{prefix}5e0{n:09d}")


ANN, BOB = _id("005", 1), _id("005", 2)
ACME, LABS, SHOP, OBRIEN, GONE = (_id("001", n) for n in range(1, 6))
OPP1, OPP2 = _id("006", 1), _id("006", 2)
TASK1, TASK2, TASK3 = (_id("00T", n) for n in range(1, 4))
TRICKY_NAME = 'O\'Brien \\ "x"\n\tend'

USERS = [
    # Id, Name, IsActive
    (ANN, "Ann Adams", 1),
    (BOB, "Bob Brown", 0),
]
ACCOUNTS = [
    # Id, Name, Industry, OwnerId, ParentId, SystemModstamp, CreatedDate, AnnualRevenue,
    # NumberOfEmployees, IsDeleted
    (
        ACME,
        "Acme",
        "Banking",
        ANN,
        None,
        "2024-01-02T03:04:05.000Z",
        "2024-02-10T08:00:00.000Z",
        1000000.0,
        50,
        0,
    ),
    (
        LABS,
        "acme labs",
        None,
        BOB,
        ACME,
        "2024-01-02T03:04:05.000Z",
        "2024-02-09T23:59:59.999Z",
        None,
        None,
        0,
    ),
    (
        SHOP,
        "50% off_shop",
        "Energy",
        None,
        None,
        "2024-01-02T10:00:00.000Z",
        "2024-01-31T00:00:00.000Z",
        2.5,
        3,
        0,
    ),
    (
        OBRIEN,
        TRICKY_NAME,
        "Retail",
        ANN,
        LABS,
        "2024-01-03T00:00:00.500Z",
        "2023-12-31T23:00:00.000Z",
        None,
        None,
        0,
    ),
    (
        GONE,
        "Gone Inc",
        "Banking",
        ANN,
        None,
        "2024-01-04T00:00:00.000Z",
        "2024-01-01T00:00:00.000Z",
        None,
        None,
        1,
    ),
]
OPPORTUNITIES = [
    # Id, Name, AccountId, StageName, CloseDate, Amount, IsClosed, OwnerId
    (OPP1, "Acme renewal", ACME, "Prospecting", "2024-02-10", 100.5, 0, ANN),
    (OPP2, "Orphan deal", None, "Closed Won", "2024-01-15", None, 1, BOB),
]
TASKS = [
    # Id, Subject, Description, WhatId, OwnerId
    (TASK1, "Call", "long notes", OPP1, ANN),
    (TASK2, "Email", None, SHOP, BOB),
    (TASK3, "Other", None, None, ANN),
]


@pytest.fixture(scope="module")
def db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    for name in SCHEMA:
        conn.executescript(create_table_sql(name))
    conn.executemany('INSERT INTO "User" (Id, Name, IsActive) VALUES (?, ?, ?)', USERS)
    conn.executemany(
        "INSERT INTO Account (Id, Name, Industry, OwnerId, ParentId, SystemModstamp, CreatedDate,"
        " AnnualRevenue, NumberOfEmployees, IsDeleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ACCOUNTS,
    )
    conn.executemany(
        "INSERT INTO Opportunity (Id, Name, AccountId, StageName, CloseDate, Amount, IsClosed,"
        " OwnerId) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        OPPORTUNITIES,
    )
    conn.executemany(
        "INSERT INTO Task (Id, Subject, Description, WhatId, OwnerId) VALUES (?, ?, ?, ?, ?)",
        TASKS,
    )
    yield conn
    conn.close()


def compiled(soql: str, *, include_deleted: bool = False) -> CompiledQuery:
    return compile_query(parse_soql(soql), include_deleted=include_deleted, now=NOW)


def records(
    db: sqlite3.Connection, soql: str, *, include_deleted: bool = False
) -> list[dict[str, Any]]:
    query = compiled(soql, include_deleted=include_deleted)
    return [query.shape_row(row, "59.0") for row in db.execute(query.sql, query.params)]


def names(db: sqlite3.Connection, soql: str, *, include_deleted: bool = False) -> list[str]:
    return [r["Name"] for r in records(db, soql, include_deleted=include_deleted)]


def total_size(db: sqlite3.Connection, soql: str, *, include_deleted: bool = False) -> int:
    query = compiled(soql, include_deleted=include_deleted)
    count: int = db.execute(query.count_sql, query.count_params).fetchone()[0]
    return count


def error_of(soql: str) -> SoqlError:
    with pytest.raises(SoqlError) as caught:
        compiled(soql)
    return caught.value


# --------------------------------------------------------------------------- WHERE semantics

FILTERS = [
    # AND/OR: one operator per level; parentheses choose the grouping.
    ("Industry = 'Banking' AND Name = 'Acme'", ["Acme"]),
    (
        "Industry = 'Energy' OR Industry = 'Retail' OR Name = 'Acme'",
        ["50% off_shop", "Acme", TRICKY_NAME],
    ),
    ("(Industry = 'Banking' AND Name = 'zzz') OR Industry = 'Energy'", ["50% off_shop"]),
    ("Industry = 'Banking' AND (Name = 'zzz' OR Industry = 'Energy')", []),
    ("NOT (Industry = 'Banking' OR Industry = 'Energy')", ["acme labs", TRICKY_NAME]),
    ("(NOT Industry = 'Retail') AND Name LIKE 'a%'", ["Acme", "acme labs"]),
    # Text comparisons ignore case.
    ("Name = 'ACME'", ["Acme"]),
    ("Industry IN ('banking', 'ENERGY')", ["50% off_shop", "Acme"]),
    # Two-valued null logic: != and NOT IN keep rows whose field is null.
    ("Industry != 'Banking'", ["50% off_shop", "acme labs", TRICKY_NAME]),
    ("Industry <> 'Banking'", ["50% off_shop", "acme labs", TRICKY_NAME]),
    ("Industry NOT IN ('Banking', 'Energy')", ["acme labs", TRICKY_NAME]),
    ("Industry IN ('Energy', null)", ["50% off_shop", "acme labs"]),
    ("Industry NOT IN ('Energy', null)", ["Acme", TRICKY_NAME]),
    ("Industry = null", ["acme labs"]),
    ("Industry != null", ["50% off_shop", "Acme", TRICKY_NAME]),
    ("Industry = ''", ["acme labs"]),
    ("AnnualRevenue < 10", ["50% off_shop"]),
    ("NOT AnnualRevenue < 10", ["Acme", "acme labs", TRICKY_NAME]),
    ("AnnualRevenue >= 2.5 AND NumberOfEmployees > 3", ["Acme"]),
    ("AnnualRevenue > -1 AND AnnualRevenue <= 2.5", ["50% off_shop"]),
    # LIKE: % and _ wildcards, \% and \_ literals, case-insensitive.
    ("Name LIKE 'ACME%'", ["Acme", "acme labs"]),
    ("Name LIKE '_cme'", ["Acme"]),
    ("Name LIKE '50\\%%'", ["50% off_shop"]),
    ("Name LIKE '5_\\% off\\_shop'", ["50% off_shop"]),
    ("Name LIKE '%\\_%'", ["50% off_shop"]),
    ("Name LIKE '%s%'", ["50% off_shop", "acme labs"]),
    ("NOT Name LIKE '%a%'", ["50% off_shop", TRICKY_NAME]),
    # Escapes in quoted strings.
    ("Name = 'O\\'Brien \\\\ \\\"x\\\"\\n\\tend'", [TRICKY_NAME]),
    ("Name = 'O\\u0027Brien \\\\ \\\"X\\\"\\N\\Tend'", [TRICKY_NAME]),
    # dateTime literals are compared in UTC whatever their offset.
    ("SystemModstamp = 2024-01-02T03:04:05Z", ["Acme", "acme labs"]),
    ("SystemModstamp = 2024-01-02T04:04:05+01:00", ["Acme", "acme labs"]),
    ("SystemModstamp = 2024-01-01T19:04:05-08:00", ["Acme", "acme labs"]),
    ("SystemModstamp > 2024-01-02T02:04:05-01:00", ["50% off_shop", TRICKY_NAME]),
    (
        "SystemModstamp >= 2024-01-02T03:04:05.000Z AND SystemModstamp < 2024-01-02T10:00:00Z",
        ["Acme", "acme labs"],
    ),
    ("SystemModstamp = 2024-01-03T00:00:00.5Z", [TRICKY_NAME]),
    ("SystemModstamp > 2024-01-03T00:00:00.499Z", [TRICKY_NAME]),
    ("SystemModstamp > 2024-01-03T00:00:00.500Z", []),
    # Relative date literals, anchored at NOW (2024-02-10 12:00 UTC).
    ("CreatedDate = TODAY", ["Acme"]),
    ("CreatedDate = YESTERDAY", ["acme labs"]),
    ("CreatedDate < YESTERDAY", ["50% off_shop", TRICKY_NAME]),
    ("CreatedDate = LAST_N_DAYS:10", ["50% off_shop", "Acme", "acme labs"]),
    ("CreatedDate = THIS_MONTH", ["Acme", "acme labs"]),
    ("CreatedDate != THIS_MONTH", ["50% off_shop", TRICKY_NAME]),
    # Relationship fields filter through the lookup; an empty lookup reads as null / false.
    ("Owner.Name = 'ann adams'", ["Acme", TRICKY_NAME]),
    ("Owner.Name = null", ["50% off_shop"]),
    ("Owner.IsActive = false", ["50% off_shop", "acme labs"]),
    ("Owner.IsActive = null", ["50% off_shop", "acme labs"]),
    ("Owner.IsActive != false", ["Acme", TRICKY_NAME]),
    ("Parent.Owner.Name LIKE 'Bob%'", [TRICKY_NAME]),
    ("Parent.Name != 'Acme'", ["50% off_shop", "Acme", TRICKY_NAME]),
    # Ids: 15-character and case-mangled 18-character forms name the same record.
    (f"Id = '{ACME[:15]}'", ["Acme"]),
    (f"Id = '{ACME.lower()}'", ["Acme"]),
    (f"OwnerId IN ('{BOB}', '{ANN[:15]}') AND Id != '{OBRIEN}'", ["Acme", "acme labs"]),
    # Keywords and names in any case.
    ("industry = 'banking' and NAME like 'ac%'", ["Acme"]),
]


@pytest.mark.parametrize(("where", "expected"), FILTERS)
def test_where_selects_the_records_salesforce_would(
    db: sqlite3.Connection, where: str, expected: list[str]
) -> None:
    soql = f"SELECT Name FROM Account WHERE {where}"
    assert sorted(names(db, soql)) == sorted(expected)
    assert total_size(db, soql) == len(expected)


def test_literals_reach_sqlite_as_parameters_only(db: sqlite3.Connection) -> None:
    hostile = "x' OR '1'='1"
    query = compiled(format_soql("SELECT Id FROM Account WHERE Name = {}", hostile))
    assert "1'='1" not in query.sql
    assert hostile in query.params
    assert list(db.execute(query.sql, query.params)) == []


# --------------------------------------------------------------------------- format_soql


def test_what_format_soql_produces_parses_and_matches(db: sqlite3.Connection) -> None:
    # An aware datetime at -08:00 with microseconds: format_soql drops the micros, goes UTC.
    modstamp = dt.datetime(2024, 1, 1, 19, 4, 5, 999999, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    soql = format_soql(
        "SELECT Name FROM Account WHERE (Name = {name} OR Name LIKE '{prefix:like}%') "
        "AND SystemModstamp >= {modstamp} AND Id IN {ids} AND Industry != {none}",
        name=TRICKY_NAME,
        prefix="50%",
        modstamp=modstamp,
        ids=[OBRIEN, SHOP, ACME],
        none=None,
    )
    assert "2024-01-02T03:04:05+00:00" in soql
    assert sorted(names(db, soql)) == sorted(["50% off_shop", TRICKY_NAME])


def test_format_soql_dates_booleans_and_numbers_match(db: sqlite3.Connection) -> None:
    soql = format_soql(
        "SELECT Name FROM Opportunity WHERE CloseDate >= {} AND IsClosed = {} AND Amount > {}",
        dt.date(2024, 2, 1),
        False,
        100.25,
    )
    assert names(db, soql) == ["Acme renewal"]


# --------------------------------------------------------------------------- record shape


def test_records_render_like_the_rest_api(db: sqlite3.Connection) -> None:
    got = records(
        db,
        "select id, owner.name, NAME, systemmodstamp, annualrevenue, numberofemployees, "
        "Owner.IsActive, Industry from account where Name = 'Acme'",
    )
    assert got == [
        {
            "attributes": {
                "type": "Account",
                "url": f"/services/data/v59.0/sobjects/Account/{ACME}",
            },
            "Id": ACME,
            "Owner": {
                "attributes": {"type": "User", "url": f"/services/data/v59.0/sobjects/User/{ANN}"},
                "Name": "Ann Adams",
                "IsActive": True,
            },
            "Name": "Acme",
            "SystemModstamp": "2024-01-02T03:04:05.000+0000",
            "AnnualRevenue": 1000000.0,
            "NumberOfEmployees": 50,
            "Industry": "Banking",
        }
    ]
    # Keys keep the select order, in API casing, whatever the query's casing.
    assert list(got[0]) == [
        "attributes",
        "Id",
        "Owner",
        "Name",
        "SystemModstamp",
        "AnnualRevenue",
        "NumberOfEmployees",
        "Industry",
    ]


def test_object_alias_prefixes_field_paths(db: sqlite3.Connection) -> None:
    got = records(db, "SELECT a.Name, a.Owner.Name FROM Account a WHERE a.Name = 'Acme'")
    assert [(r["Name"], r["Owner"]["Name"]) for r in got] == [("Acme", "Ann Adams")]


def test_null_lookup_renders_null_and_nested_lookups_nest(db: sqlite3.Connection) -> None:
    got = records(
        db,
        "SELECT Name, Owner.Name, Parent.Name, Parent.Owner.Name, AnnualRevenue FROM Account "
        "WHERE Name IN ('50% off_shop', 'acme labs') ORDER BY Name",
    )
    assert got[0]["Owner"] is None
    assert got[0]["Parent"] is None
    assert got[0]["AnnualRevenue"] == 2.5
    assert got[1]["AnnualRevenue"] is None
    assert got[1]["Parent"] == {
        "attributes": {"type": "Account", "url": f"/services/data/v59.0/sobjects/Account/{ACME}"},
        "Name": "Acme",
        "Owner": {
            "attributes": {"type": "User", "url": f"/services/data/v59.0/sobjects/User/{ANN}"},
            "Name": "Ann Adams",
        },
    }


def test_dates_booleans_and_api_version_in_urls(db: sqlite3.Connection) -> None:
    query = compiled("SELECT Id, CloseDate, IsClosed, Amount, Account.Name FROM Opportunity")
    rows = [query.shape_row(row, "62.0") for row in db.execute(query.sql, query.params)]
    assert rows[0]["attributes"]["url"] == f"/services/data/v62.0/sobjects/Opportunity/{OPP1}"
    assert (rows[0]["CloseDate"], rows[0]["IsClosed"], rows[0]["Amount"]) == (
        "2024-02-10",
        False,
        100.5,
    )
    assert (rows[1]["IsClosed"], rows[1]["Amount"], rows[1]["Account"]) == (True, None, None)


def test_polymorphic_what_renders_the_actual_type(db: sqlite3.Connection) -> None:
    got = records(db, "SELECT Subject, What.Name, What.Type FROM Task ORDER BY Subject")
    by_subject = {r["Subject"]: r["What"] for r in got}
    assert by_subject["Call"] == {
        "attributes": {
            "type": "Opportunity",
            "url": f"/services/data/v59.0/sobjects/Opportunity/{OPP1}",
        },
        "Name": "Acme renewal",
        "Type": "Opportunity",
    }
    assert by_subject["Email"]["attributes"]["type"] == "Account"
    assert by_subject["Email"]["Name"] == "50% off_shop"
    assert by_subject["Other"] is None
    assert names_of_tasks(db, "What.Type = 'Account'") == ["Email"]


def names_of_tasks(db: sqlite3.Connection, where: str) -> list[str]:
    return [r["Subject"] for r in records(db, f"SELECT Subject FROM Task WHERE {where}")]


def test_flatten_row_gives_bulk_columns(db: sqlite3.Connection) -> None:
    query = compiled("SELECT Name, Owner.IsActive, Owner.Name FROM Account ORDER BY Name")
    assert query.field_paths == ("Name", "Owner.IsActive", "Owner.Name")
    flat = [query.flatten_row(row) for row in db.execute(query.sql, query.params)]
    assert flat[0] == ("50% off_shop", None, None)  # empty lookup: empty, not false
    assert flat[1] == ("Acme", True, "Ann Adams")


# --------------------------------------------------------------------------- ORDER BY, paging


ORDERINGS = [
    ("SystemModstamp, Id", [ACME, LABS, SHOP, OBRIEN]),
    ("SystemModstamp DESC, Id DESC", [OBRIEN, SHOP, LABS, ACME]),
    ("SystemModstamp DESC", [OBRIEN, SHOP, ACME, LABS]),  # ties still broken by Id
    ("Industry", [LABS, ACME, SHOP, OBRIEN]),  # nulls first ascending
    ("Industry NULLS LAST", [ACME, SHOP, OBRIEN, LABS]),
    ("Industry DESC", [OBRIEN, SHOP, ACME, LABS]),  # nulls last descending
    ("Industry DESC NULLS FIRST", [LABS, OBRIEN, SHOP, ACME]),
    ("Name", [SHOP, ACME, LABS, OBRIEN]),  # case-insensitive: Acme < acme labs
    ("Owner.Name DESC, Name", [LABS, ACME, OBRIEN, SHOP]),
]


@pytest.mark.parametrize(("order_by", "expected"), ORDERINGS)
def test_order_by(db: sqlite3.Connection, order_by: str, expected: list[str]) -> None:
    got = records(db, f"SELECT Id FROM Account ORDER BY {order_by}")
    assert [r["Id"] for r in got] == expected


def test_limit_offset_and_total_size(db: sqlite3.Connection) -> None:
    soql = "SELECT Id FROM Account ORDER BY SystemModstamp, Id LIMIT 2 OFFSET 1"
    assert [r["Id"] for r in records(db, soql)] == [LABS, SHOP]
    assert total_size(db, soql) == 2
    assert total_size(db, "SELECT Id FROM Account LIMIT 10") == 4
    assert total_size(db, "SELECT Id FROM Account OFFSET 3") == 1
    assert records(db, "SELECT Id FROM Account ORDER BY Id OFFSET 2000") == []


def test_pages_cover_the_result_once_within_the_querys_own_window(
    db: sqlite3.Connection,
) -> None:
    query = compiled("SELECT Id FROM Account ORDER BY SystemModstamp LIMIT 3 OFFSET 1")
    seen = []
    for start in range(0, 5, 2):
        sql, params = query.page(start, 2)
        seen += [query.shape_row(row, "59.0")["Id"] for row in db.execute(sql, params)]
    assert seen == [LABS, SHOP, OBRIEN]


# --------------------------------------------------------------------------- deleted rows


def test_deleted_rows_only_with_query_all(db: sqlite3.Connection) -> None:
    assert "Gone Inc" not in names(db, "SELECT Name FROM Account")
    assert names(db, "SELECT Name FROM Account WHERE IsDeleted = true") == []
    rows = records(
        db, "SELECT Name, IsDeleted FROM Account WHERE IsDeleted = true", include_deleted=True
    )
    assert [(r["Name"], r["IsDeleted"]) for r in rows] == [("Gone Inc", True)]
    assert total_size(db, "SELECT COUNT() FROM Account") == 4
    assert total_size(db, "SELECT COUNT() FROM Account", include_deleted=True) == 5


# --------------------------------------------------------------------------- COUNT


def test_count_queries(db: sqlite3.Connection) -> None:
    query = compiled("SELECT COUNT() FROM Account WHERE Industry = 'Banking'")
    assert query.kind == "count"
    assert db.execute(query.sql, query.params).fetchone()[0] == 1
    assert total_size(db, "select count() from Account LIMIT 2") == 2

    agg = compiled("SELECT COUNT(Id), COUNT(Industry) n, MAX(SystemModstamp) FROM Account")
    assert agg.kind == "aggregate"
    rows = [agg.shape_row(row, "59.0") for row in db.execute(agg.sql, agg.params)]
    assert rows == [
        {
            "attributes": {"type": "AggregateResult"},
            "expr0": 4,
            "n": 3,
            "expr1": "2024-01-03T00:00:00.500+0000",
        }
    ]
    assert db.execute(agg.count_sql, agg.count_params).fetchone()[0] == 1


# --------------------------------------------------------------------------- errors

FIELD_HINT = (
    "If you are attempting to use a custom field, be sure to append the '__c' after the custom "
    "field name. Please reference your WSDL or the describe call for the appropriate names."
)

ERRORS = [
    (
        "SELECT Id, Foo FROM Account",
        "INVALID_FIELD",
        "\nSELECT Id, Foo FROM Account\n           ^\nERROR at Row:1:Column:12\n"
        f"No such column 'Foo' on entity 'Account'. {FIELD_HINT}",
    ),
    (
        "SELECT Id FROM Foo",
        "INVALID_TYPE",
        "\nSELECT Id FROM Foo\n               ^\nERROR at Row:1:Column:16\n"
        "sObject type 'Foo' is not supported. If you are attempting to use a custom object, be "
        "sure to append the '__c' after the entity name. Please reference your WSDL or the "
        "describe call for the appropriate names.",
    ),
    (
        "SELECT Id\nFROM Account\nWHERE Name = 'a' AND Name = 'b' OR Name = 'c'",
        "MALFORMED_QUERY",
        "\nWHERE Name = 'a' AND Name = 'b' OR Name = 'c'\n                                ^\n"
        "ERROR at Row:3:Column:33\nunexpected token: 'OR'",
    ),
    ("SELECT Id FROM Account WHERE Name = 'a' AND NOT Name = 'b'", "MALFORMED_QUERY", "'NOT'"),
    ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY", "unexpected token: '<EOF>'"),
    ("SELEKT Id FROM Account", "MALFORMED_QUERY", "unexpected token: 'SELEKT'"),
    ("SELECT Id FROM Account WHERE Name = 'unterminated", "MALFORMED_QUERY", "unterminated"),
    ("SELECT Id FROM Account WHERE Name = 'a\\qb'", "MALFORMED_QUERY", "'\\q'"),
    ("SELECT Id FROM Account WHERE Name = '50\\%'", "MALFORMED_QUERY", "outside LIKE"),
    ("SELECT Id FROM Account GROUP BY Name", "MALFORMED_QUERY", "not supported"),
    ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "MALFORMED_QUERY", "not supported"),
    ("SELECT Id FROM Account WHERE AnnualRevenue > 1e5", "MALFORMED_QUERY", "'1e5'"),
    (
        "SELECT Id FROM Account OFFSET 2001",
        "NUMBER_OUTSIDE_VALID_RANGE",
        "Maximum SOQL offset allowed for apiName Account is 2000",
    ),
    # dateTime literal forms: Z or ±hh:mm only.
    (
        "SELECT Id FROM Account WHERE SystemModstamp > 2024-01-02T03:04:05",
        "MALFORMED_QUERY",
        "Invalid datetime: 2024-01-02T03:04:05",
    ),
    (
        "SELECT Id FROM Account WHERE SystemModstamp > 2024-01-02T03:04:05.000+0000",
        "MALFORMED_QUERY",
        "Invalid datetime",
    ),
    (
        "SELECT Id FROM Account WHERE SystemModstamp > 2024-01-02T25:04:05Z",
        "MALFORMED_QUERY",
        "Invalid datetime",
    ),
    (
        "SELECT Id FROM Opportunity WHERE CloseDate > 2024-13-01",
        "MALFORMED_QUERY",
        "Invalid date: 2024-13-01",
    ),
    # Literals of the wrong type for the field.
    (
        "SELECT Id FROM Opportunity WHERE CloseDate > 2024-01-02T03:04:05Z",
        "INVALID_FIELD",
        "value of filter criterion for field 'CloseDate' must be of type date and should not be "
        "enclosed in quotes",
    ),
    (
        "SELECT Id FROM Account WHERE CreatedDate > 2024-01-02",
        "INVALID_FIELD",
        "field 'CreatedDate' must be of type dateTime and should not be enclosed in quotes",
    ),
    (
        "SELECT Id FROM Account WHERE SystemModstamp > '2024-01-02T03:04:05Z'",
        "INVALID_FIELD",
        "field 'SystemModstamp' must be of type dateTime and should not be enclosed in quotes",
    ),
    (
        "SELECT Id FROM Account WHERE Name = 5",
        "INVALID_FIELD",
        "field 'Name' must be of type string and should be enclosed in quotes",
    ),
    ("SELECT Id FROM Account WHERE AnnualRevenue = '5'", "INVALID_FIELD", "type double"),
    ("SELECT Id FROM Opportunity WHERE IsClosed = 'true'", "INVALID_FIELD", "type boolean"),
    ("SELECT Id FROM Account WHERE Name = TODAY", "INVALID_FIELD", "type string"),
    (
        "SELECT Id FROM Account WHERE Id = 'abc'",
        "INVALID_QUERY_FILTER_OPERATOR",
        "invalid ID field: abc",
    ),
    ("SELECT Id FROM Account WHERE AnnualRevenue LIKE '5%'", "INVALID_FIELD", "LIKE"),
    # Names.
    (
        "SELECT Id, Foo.Name FROM Account",
        "INVALID_FIELD",
        "Didn't understand relationship 'Foo' in field path.",
    ),
    ("SELECT Owner.Foo FROM Account", "INVALID_FIELD", "No such column 'Foo' on entity 'User'."),
    ("SELECT What.Amount FROM Task", "INVALID_FIELD", "No such column 'Amount' on entity 'Name'."),
    ("SELECT Id, IsDeleted FROM User", "INVALID_FIELD", "No such column 'IsDeleted'"),
    ("SELECT Id, Name, id FROM Account", "INVALID_FIELD", "duplicate field selected: Id"),
    (
        "SELECT Id FROM Task WHERE Description = 'x'",
        "INVALID_FIELD",
        "field 'Description' can not be filtered in a query call",
    ),
    ("SELECT Id FROM Task ORDER BY Description", "INVALID_FIELD", "can not be sorted"),
    ("SELECT COUNT(), Name FROM Account", "MALFORMED_QUERY", "unexpected token"),
    (
        "SELECT COUNT(Id), Name FROM Account",
        "MALFORMED_QUERY",
        "Field must be grouped or aggregated: Name",
    ),
    ("SELECT SUM(Name) FROM Account", "MALFORMED_QUERY", "does not support aggregate operator SUM"),
]


@pytest.mark.parametrize(("soql", "code", "message"), ERRORS)
def test_errors_carry_salesforce_codes_and_messages(soql: str, code: str, message: str) -> None:
    error = error_of(soql)
    assert error.error_code == code
    assert message in error.message
    assert error.to_body() == [{"message": error.message, "errorCode": code}]


def test_unknown_field_message_is_exactly_salesforces() -> None:
    error = error_of("SELECT Id, Foo FROM Account")
    assert error.message == ERRORS[0][2]


# --------------------------------------------------------------------------- schema


def test_field_lookup_ignores_case_and_describe_takes_stage_overrides() -> None:
    opportunity = SCHEMA["Opportunity"]
    field = opportunity.field("stagename")
    assert field is not None
    assert field.name == "StageName"
    body = describe(
        "opportunity",
        {"StageName": ["Discovery", PicklistValue("Old Stage", active=False)]},
    )
    assert (body["name"], body["keyPrefix"]) == ("Opportunity", "006")
    stage = next(f for f in body["fields"] if f["name"] == "StageName")
    assert stage["picklistValues"] == [
        {
            "active": True,
            "defaultValue": False,
            "label": "Discovery",
            "validFor": None,
            "value": "Discovery",
        },
        {
            "active": False,
            "defaultValue": False,
            "label": "Old Stage",
            "validFor": None,
            "value": "Old Stage",
        },
    ]
    assert (stage["nillable"], stage["type"]) == (False, "picklist")
    owner = next(f for f in body["fields"] if f["name"] == "OwnerId")
    assert (owner["referenceTo"], owner["relationshipName"]) == (["User"], "Owner")
