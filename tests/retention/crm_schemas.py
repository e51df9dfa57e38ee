"""The tables the shipped CRM retention templates use, built as each CRM builds them from its own
schema definitions (the templates' headers cite the files): column types, lengths, NULL-ability,
defaults, and CiviCRM's foreign keys. Only the tables a template names, with their key, time,
filter and personal columns and a few of the rest."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.schema import CheckConstraint

# --- SuiteCRM 7.14.6 (MariaDB) --------------------------------------------------------------
# DBManager::oneColumnSQLRep: only id columns (type id, required) are NOT NULL; varchar without
# a len is varchar(255); MysqlManager's type map: id char(36), bool tinyint(1), datetime, date,
# text; email_addresses.email_address has `length`, not `len`, so it is varchar(255).


def _suite_id(name: str = "id", **kw: object) -> Column[str]:
    return Column(name, mysql.CHAR(36), **kw)  # type: ignore[arg-type]


def _flag(name: str) -> Column[bool]:
    return Column(name, mysql.TINYINT(1), server_default=text("0"))


_PERSON = [  # include/SugarObjects/templates/person/vardefs.php
    ("salutation", 255), ("first_name", 100), ("last_name", 100), ("title", 100),
    ("photo", 255), ("phone_home", 100), ("phone_mobile", 100), ("phone_work", 100),
    ("phone_other", 100), ("phone_fax", 100), ("primary_address_street", 150),
    ("primary_address_city", 100), ("primary_address_state", 100),
    ("primary_address_postalcode", 20), ("primary_address_country", 255),
    ("alt_address_street", 150), ("alt_address_city", 100), ("alt_address_state", 100),
    ("alt_address_postalcode", 20), ("alt_address_country", 255), ("assistant", 75),
    ("assistant_phone", 100), ("lawful_basis_source", 100),
]  # fmt: skip


def _suite_person(name: str, metadata: MetaData, *extra: Column[object]) -> Table:
    return Table(
        name,
        metadata,
        _suite_id(primary_key=True),
        Column("date_entered", DateTime),
        Column("date_modified", DateTime),
        _suite_id("modified_user_id"),
        _suite_id("created_by"),
        Column("description", Text),
        _flag("deleted"),
        _suite_id("assigned_user_id"),
        *(Column(column, mysql.VARCHAR(length)) for column, length in _PERSON),
        Column("department", mysql.VARCHAR(100 if name == "leads" else 255)),
        _flag("do_not_call"),
        Column("lawful_basis", Text),
        Column("date_reviewed", Date),
        Column("birthdate", Date),
        *extra,
    )


def suitecrm(metadata: MetaData) -> None:
    _suite_person(
        "leads",
        metadata,
        _flag("converted"),
        Column("refered_by", mysql.VARCHAR(100)),
        Column("status", mysql.VARCHAR(100)),
        Column("account_name", mysql.VARCHAR(255)),
        Column("website", mysql.VARCHAR(255)),
    )
    _suite_person(
        "contacts",
        metadata,
        Column("lead_source", mysql.VARCHAR(255)),
        _suite_id("reports_to_id"),
        Column("joomla_account_id", mysql.VARCHAR(255)),
        _flag("portal_account_disabled"),
    )
    Table(  # metadata/email_addressesMetaData.php
        "email_addresses",
        metadata,
        _suite_id(primary_key=True),
        Column("email_address", mysql.VARCHAR(255)),
        Column("email_address_caps", mysql.VARCHAR(255)),
        _flag("invalid_email"),
        _flag("opt_out"),
        Column("confirm_opt_in", mysql.VARCHAR(255), server_default="not-opt-in"),
        Column("date_created", DateTime),
        Column("date_modified", DateTime),
        _flag("deleted"),
    )
    Table(
        "email_addr_bean_rel",
        metadata,
        _suite_id(primary_key=True),
        _suite_id("email_address_id", nullable=False),
        _suite_id("bean_id", nullable=False),
        Column("bean_module", mysql.VARCHAR(100)),
        _flag("primary_address"),
        _flag("reply_to_address"),
        Column("date_created", DateTime),
        Column("date_modified", DateTime),
        _flag("deleted"),
        Index("idx_email_address_id", "email_address_id"),
        Index("idx_bean_id", "bean_id", "bean_module"),
    )
    for audited in ("leads", "contacts"):  # metadata/audit_templateMetaData.php
        Table(
            f"{audited}_audit",
            metadata,
            _suite_id(primary_key=True),
            _suite_id("parent_id", nullable=False),
            Column("date_created", DateTime),
            Column("created_by", mysql.VARCHAR(36)),
            Column("field_name", mysql.VARCHAR(100)),
            Column("data_type", mysql.VARCHAR(100)),
            Column("before_value_string", mysql.VARCHAR(255)),
            Column("after_value_string", mysql.VARCHAR(255)),
            Column("before_value_text", Text),
            Column("after_value_text", Text),
            Index(f"idx_{audited}_parent_id", "parent_id"),
        )
    Table(
        "emails_email_addr_rel",
        metadata,
        _suite_id(primary_key=True),
        _suite_id("email_id", nullable=False),
        Column("address_type", mysql.VARCHAR(4)),
        _suite_id("email_address_id", nullable=False),
        _flag("deleted"),
        Index("idx_eearl_address_id", "email_address_id"),
    )


# --- EspoCRM 10.0.0 (MariaDB) ---------------------------------------------------------------
# Ids varchar(24); varchar(255) unless maxLength says otherwise; text is mediumtext; every
# string column utf8mb4_unicode_ci (MysqlColumnPreparator); link tables: id bigint unsigned
# auto-increment, the two mid keys, extra columns, deleted.
_CI = "utf8mb4_unicode_ci"


def _espo(length: int) -> mysql.VARCHAR:
    return mysql.VARCHAR(length, collation=_CI)


def _espo_entity(name: str, metadata: MetaData, *extra: Column[object]) -> Table:
    return Table(
        name,
        metadata,
        Column("id", _espo(24), primary_key=True),
        Column("deleted", mysql.TINYINT(1), server_default=text("0")),
        *extra,
    )


def _espo_link(name: str, metadata: MetaData, *columns: Column[object]) -> Table:
    return Table(
        name,
        metadata,
        Column("id", mysql.BIGINT(unsigned=True), primary_key=True, autoincrement=True),
        *columns,
        Column("deleted", mysql.TINYINT(1), server_default=text("0")),
    )  # fmt: skip


def _espo_person(name: str, metadata: MetaData, *extra: Column[object]) -> Table:
    return _espo_entity(
        name,
        metadata,
        Column("salutation_name", _espo(255)),
        Column("first_name", _espo(100)),
        Column("last_name", _espo(100)),
        Column("description", mysql.MEDIUMTEXT(collation=_CI)),
        Column("do_not_call", mysql.TINYINT(1), server_default=text("0")),
        *(Column(f"address_{part}", _espo(255)) for part in
          ("street", "city", "state", "country", "postal_code")),
        Column("created_at", DateTime),
        Column("modified_at", DateTime),
        Column("assigned_user_id", _espo(24)),
        *extra,
    )  # fmt: skip


def espocrm(metadata: MetaData) -> None:
    _espo_person(
        "lead",
        metadata,
        Column("title", _espo(100)),
        Column("status", _espo(255), server_default="New"),
        Column("website", _espo(255)),
        Column("account_name", _espo(255)),
        Column("converted_at", DateTime),
    )
    _espo_person("contact", metadata, Column("account_id", _espo(24)))
    _espo_entity(
        "email_address",
        metadata,
        Column("name", _espo(255)),
        Column("lower", _espo(255)),
        Column("invalid", mysql.TINYINT(1), server_default=text("0")),
        Column("opt_out", mysql.TINYINT(1), server_default=text("0")),
    )
    _espo_entity(
        "phone_number",
        metadata,
        Column("name", _espo(36)),
        Column("type", _espo(255)),
        Column("numeric", _espo(36)),
        Column("invalid", mysql.TINYINT(1), server_default=text("0")),
        Column("opt_out", mysql.TINYINT(1), server_default=text("0")),
    )
    for link, far in (("entity_email_address", "email_address_id"),
                      ("entity_phone_number", "phone_number_id")):  # fmt: skip
        _espo_link(
            link,
            metadata,
            Column("entity_id", _espo(24)),
            Column(far, _espo(24)),
            Column("entity_type", _espo(100)),
            Column("primary", mysql.TINYINT(1), server_default=text("0")),
            Index(f"{link}_entity", "entity_id", "entity_type"),
            Index(f"{link}_far", far),
        )
    _espo_link("email_email_address", metadata, Column("email_id", _espo(24)),
               Column("email_address_id", _espo(24)), Column("address_type", _espo(4)))  # fmt: skip
    _espo_link("sms_phone_number", metadata, Column("sms_id", _espo(24)),
               Column("phone_number_id", _espo(24)), Column("address_type", _espo(4)))  # fmt: skip
    _espo_entity("email", metadata, Column("name", _espo(255)),
                 Column("from_email_address_id", _espo(24)))  # fmt: skip
    _espo_entity("sms", metadata, Column("body", mysql.MEDIUMTEXT(collation=_CI)),
                 Column("from_phone_number_id", _espo(24)))  # fmt: skip
    _espo_entity("note", metadata, Column("post", mysql.MEDIUMTEXT(collation=_CI)),
                 Column("data", mysql.MEDIUMTEXT(collation=_CI)), Column("type", _espo(24)),
                 Column("parent_id", _espo(24)), Column("parent_type", _espo(100)),
                 Column("created_at", DateTime), Index("note_parent", "parent_id"))  # fmt: skip


# --- Odoo (PostgreSQL) ----------------------------------------------------------------------
# id serial; Char varchar, Text/Html text, Boolean boolean, Datetime timestamp (UTC, no zone),
# Date date, Integer/Many2one/Many2oneReference integer, Float with digits numeric; required
# NOT NULL; create_date and write_date on every model with log access.


def _odoo(name: str, metadata: MetaData, *columns: object, log_access: bool = True) -> Table:
    stamps = [Column("create_date", DateTime), Column("write_date", DateTime)]
    return Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        *columns,
        *(stamps if log_access else []),
    )


def _chars(*names: str) -> list[Column[str]]:
    return [Column(name, String) for name in names]


def odoo(metadata: MetaData) -> None:
    _odoo(
        "crm_lead",
        metadata,
        Column("name", String, nullable=False),
        Column("active", Boolean),
        Column("type", String, nullable=False),
        *_chars("contact_name", "partner_name", "email_from", "email_normalized", "email_cc",
                "phone", "mobile", "phone_sanitized", "function", "website", "street",
                "street2", "zip", "city", "referred"),
        Column("description", Text),
        Column("partner_id", Integer),
    )  # fmt: skip
    _odoo(
        "res_partner",
        metadata,
        *_chars("name", "complete_name", "ref", "vat", "website", "function", "type", "street",
                "street2", "zip", "city", "email", "email_normalized", "phone", "mobile"),
        Column("comment", Text),
        Column("active", Boolean),
        Column("is_company", Boolean),
        Column("partner_latitude", Numeric),
        Column("partner_longitude", Numeric),
        CheckConstraint("(type='contact' AND name IS NOT NULL) or (type!='contact')",
                        name="res_partner_check_name"),
    )  # fmt: skip
    _odoo("mail_message", metadata, *_chars("model", "subject", "email_from"),
          Column("res_id", Integer), Column("body", Text), Column("author_id", Integer),
          Column("message_type", String, nullable=False), Column("date", DateTime),
          Index("mail_message_model_res_id_idx", "model", "res_id"))  # fmt: skip
    _odoo("mail_followers", metadata, Column("res_model", String, nullable=False),
          Column("res_id", Integer, index=True), Column("partner_id", Integer),
          log_access=False)  # fmt: skip
    _odoo("mail_activity", metadata, Column("res_model_id", Integer, nullable=False),
          Column("res_model", String, index=True), Column("res_id", Integer, nullable=False),
          Column("summary", String), Column("note", Text),
          Column("date_deadline", Date, nullable=False))  # fmt: skip
    _odoo("ir_attachment", metadata, Column("name", String, nullable=False),
          Column("res_model", String), Column("res_id", Integer), Column("store_fname", String),
          Column("type", String, nullable=False))  # fmt: skip


# --- CiviCRM 6.14 (MariaDB) -----------------------------------------------------------------
# int unsigned ids, `boolean` is tinyint(1), `required` is NOT NULL; the contact details point
# at civicrm_contact ON DELETE CASCADE; modified_date ON UPDATE CURRENT_TIMESTAMP.
_UINT = mysql.INTEGER(unsigned=True)


def _civi_flag(name: str) -> Column[bool]:
    return Column(name, mysql.TINYINT(1), nullable=False, server_default=text("0"))


def _civi_detail(name: str, metadata: MetaData, *columns: object) -> Table:
    return Table(
        name,
        metadata,
        Column("id", _UINT, primary_key=True, autoincrement=True),
        Column("contact_id", _UINT, ForeignKey("civicrm_contact.id", ondelete="CASCADE")),
        *columns,
    )


_CIVI_NAMES = [
    ("contact_type", 64), ("external_identifier", 64), ("display_name", 128),
    ("organization_name", 128), ("first_name", 64), ("middle_name", 64), ("last_name", 64),
    ("legal_identifier", 32), ("sort_name", 128), ("nick_name", 128), ("hash", 32),
    ("api_key", 32), ("source", 255), ("formal_title", 64), ("email_greeting_custom", 128),
    ("email_greeting_display", 255), ("postal_greeting_custom", 128),
    ("postal_greeting_display", 255), ("addressee_custom", 128), ("addressee_display", 255),
    ("job_title", 255), ("user_unique_id", 255),
]  # fmt: skip


def civicrm(metadata: MetaData) -> None:
    Table(
        "civicrm_contact",
        metadata,
        Column("id", _UINT, primary_key=True, autoincrement=True),
        *(Column(name, mysql.VARCHAR(length)) for name, length in _CIVI_NAMES),
        *(_civi_flag(flag) for flag in ("do_not_email", "do_not_phone", "is_opt_out",
                                        "is_deceased", "is_deleted")),
        Column("image_URL", Text),
        *(Column(name, _UINT) for name in ("prefix_id", "suffix_id", "gender_id")),
        Column("birth_date", Date),
        Column("deceased_date", Date),
        Column("created_date", mysql.TIMESTAMP, nullable=True, server_default=text("NULL")),
        Column("modified_date", mysql.TIMESTAMP, nullable=True,
               server_default=text("CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP")),
        Index("UI_external_identifier", "external_identifier", unique=True),
    )  # fmt: skip
    _civi_detail("civicrm_email", metadata, Column("email", mysql.VARCHAR(254)),
                 _civi_flag("is_primary"), Column("on_hold", _UINT, nullable=False,
                                                  server_default=text("0")))  # fmt: skip
    _civi_detail("civicrm_phone", metadata, Column("phone", mysql.VARCHAR(32)),
                 Column("phone_numeric", mysql.VARCHAR(32)), _civi_flag("is_primary"))  # fmt: skip
    _civi_detail("civicrm_address", metadata, Column("street_address", mysql.VARCHAR(96)),
                 Column("city", mysql.VARCHAR(64)), Column("postal_code", mysql.VARCHAR(64)),
                 Column("geo_code_1", mysql.DOUBLE), _civi_flag("manual_geo_code"))  # fmt: skip
    _civi_detail("civicrm_im", metadata, Column("name", mysql.VARCHAR(64)),
                 _civi_flag("is_primary"))  # fmt: skip
    _civi_detail("civicrm_website", metadata, Column("url", mysql.VARCHAR(2048)))
    _civi_detail("civicrm_openid", metadata, Column("openid", mysql.VARCHAR(255)),
                 _civi_flag("allowed_to_login"))  # fmt: skip
    Table(
        "civicrm_note",
        metadata,
        Column("id", _UINT, primary_key=True, autoincrement=True),
        Column("entity_table", mysql.VARCHAR(64), nullable=False),
        Column("entity_id", _UINT, nullable=False),
        Column("note", Text),
        Column("contact_id", _UINT, ForeignKey("civicrm_contact.id", ondelete="SET NULL")),
        Column("modified_date", mysql.TIMESTAMP, nullable=False,
               server_default=text("CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP")),
        Column("privacy", mysql.VARCHAR(255), nullable=False, server_default="0"),
        Index("index_entity", "entity_table", "entity_id"),
    )  # fmt: skip


SCHEMAS: dict[str, Callable[[MetaData], None]] = {
    "suitecrm": suitecrm,
    "espocrm": espocrm,
    "odoo": odoo,
    "civicrm": civicrm,
}
ENGINES = {"suitecrm": "mariadb", "espocrm": "mariadb", "odoo": "postgresql", "civicrm": "mariadb"}
