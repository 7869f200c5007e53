"""Materialisation metadata: where a table is, which Delta versions were read and written.

Every asset reports the same keys, so an engineer can follow any row back through the
versions in the Dagster UI: ``table_uri``, ``delta_version`` (written), ``read/<table>``
(each input's version) and Dagster's standard ``dagster/row_count``.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import dagster as dg

from va_core.warehouse import TABLES, Warehouse

_ARROW_TO_DAGSTER = {"string": "string", "large_string": "string", "bool": "bool", "int32": "int",
                     "int64": "int", "double": "float", "float": "float"}


def column_schema(table: str) -> dg.TableSchema:
    """The Delta table's columns as Dagster shows them on the asset's page."""
    cols = []
    for field in TABLES[table].schema:
        kind = str(field.type)
        cols.append(dg.TableColumn(field.name, _ARROW_TO_DAGSTER.get(kind, kind)))
    return dg.TableSchema(columns=cols)


def definition_metadata(table: str) -> dict[str, Any]:
    """Static metadata of an asset backed by one warehouse table."""
    return {"dagster/column_schema": column_schema(table), "dagster/table_name": table,
            "table_description": TABLES[table].description}


def table_metadata(wh: Warehouse, table: str, written: int | None, rows: int | None = None,
                   read: Mapping[str, int | None] | None = None, **extra: Any) -> dict[str, Any]:
    """What one materialisation wrote (``table`` at version ``written``) and what it read."""
    meta: dict[str, Any] = {
        "table_uri": dg.MetadataValue.path(wh.table_uri(table)) if wh.is_local else dg.MetadataValue.url(wh.table_uri(table)),
        "delta_version": dg.MetadataValue.int(int(written)) if written is not None else dg.MetadataValue.null(),
    }
    if rows is not None:
        meta["dagster/row_count"] = dg.MetadataValue.int(int(rows))
    for name, version in (read or {}).items():
        meta[f"read/{name}"] = dg.MetadataValue.int(int(version)) if version is not None else dg.MetadataValue.null()
    for key, value in extra.items():
        meta[key] = as_metadata(value)
    return meta


def as_metadata(value: Any):
    """Numbers stay numbers (Dagster plots float and int metadata over time); None is null."""
    if isinstance(value, dg.MetadataValue):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return dg.MetadataValue.null()
    if isinstance(value, bool):
        return dg.MetadataValue.bool(value)
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    if isinstance(value, float):
        return dg.MetadataValue.float(value)
    if isinstance(value, (dict, list)):
        return dg.MetadataValue.json(value)
    return dg.MetadataValue.text(str(value))


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "_none_"
    head = "| " + " | ".join(columns) + " |\n| " + " | ".join("---" for _ in columns) + " |\n"
    return head + "\n".join("| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else str(value).replace("|", "\\|")
