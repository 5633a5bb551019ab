"""OMOP CDM v5.4 table shapes used here (column names, order and types as in the
official DuckDB DDL, OHDSI/CommonDataModel inst/ddl/5.4/duckdb/OMOPCDM_duckdb_5.4_ddl.sql)."""

from __future__ import annotations

TABLES: dict[str, str] = {
    "person": """
        person_id integer NOT NULL, gender_concept_id integer NOT NULL, year_of_birth integer NOT NULL,
        month_of_birth integer NULL, day_of_birth integer NULL, birth_datetime TIMESTAMP NULL,
        race_concept_id integer NOT NULL, ethnicity_concept_id integer NOT NULL, location_id integer NULL,
        provider_id integer NULL, care_site_id integer NULL, person_source_value varchar(50) NULL,
        gender_source_value varchar(50) NULL, gender_source_concept_id integer NULL,
        race_source_value varchar(50) NULL, race_source_concept_id integer NULL,
        ethnicity_source_value varchar(50) NULL, ethnicity_source_concept_id integer NULL""",
    "observation_period": """
        observation_period_id integer NOT NULL, person_id integer NOT NULL,
        observation_period_start_date date NOT NULL, observation_period_end_date date NOT NULL,
        period_type_concept_id integer NOT NULL""",
    "visit_occurrence": """
        visit_occurrence_id integer NOT NULL, person_id integer NOT NULL, visit_concept_id integer NOT NULL,
        visit_start_date date NOT NULL, visit_start_datetime TIMESTAMP NULL, visit_end_date date NOT NULL,
        visit_end_datetime TIMESTAMP NULL, visit_type_concept_id Integer NOT NULL, provider_id integer NULL,
        care_site_id integer NULL, visit_source_value varchar(50) NULL, visit_source_concept_id integer NULL,
        admitted_from_concept_id integer NULL, admitted_from_source_value varchar(50) NULL,
        discharged_to_concept_id integer NULL, discharged_to_source_value varchar(50) NULL,
        preceding_visit_occurrence_id integer NULL""",
    "condition_occurrence": """
        condition_occurrence_id integer NOT NULL, person_id integer NOT NULL,
        condition_concept_id integer NOT NULL, condition_start_date date NOT NULL,
        condition_start_datetime TIMESTAMP NULL, condition_end_date date NULL,
        condition_end_datetime TIMESTAMP NULL, condition_type_concept_id integer NOT NULL,
        condition_status_concept_id integer NULL, stop_reason varchar(20) NULL, provider_id integer NULL,
        visit_occurrence_id integer NULL, visit_detail_id integer NULL,
        condition_source_value varchar(50) NULL, condition_source_concept_id integer NULL,
        condition_status_source_value varchar(50) NULL""",
    "drug_exposure": """
        drug_exposure_id integer NOT NULL, person_id integer NOT NULL, drug_concept_id integer NOT NULL,
        drug_exposure_start_date date NOT NULL, drug_exposure_start_datetime TIMESTAMP NULL,
        drug_exposure_end_date date NOT NULL, drug_exposure_end_datetime TIMESTAMP NULL,
        verbatim_end_date date NULL, drug_type_concept_id integer NOT NULL, stop_reason varchar(20) NULL,
        refills integer NULL, quantity NUMERIC NULL, days_supply integer NULL, sig TEXT NULL,
        route_concept_id integer NULL, lot_number varchar(50) NULL, provider_id integer NULL,
        visit_occurrence_id integer NULL, visit_detail_id integer NULL, drug_source_value varchar(50) NULL,
        drug_source_concept_id integer NULL, route_source_value varchar(50) NULL,
        dose_unit_source_value varchar(50) NULL""",
    "procedure_occurrence": """
        procedure_occurrence_id integer NOT NULL, person_id integer NOT NULL,
        procedure_concept_id integer NOT NULL, procedure_date date NOT NULL,
        procedure_datetime TIMESTAMP NULL, procedure_end_date date NULL, procedure_end_datetime TIMESTAMP NULL,
        procedure_type_concept_id integer NOT NULL, modifier_concept_id integer NULL, quantity integer NULL,
        provider_id integer NULL, visit_occurrence_id integer NULL, visit_detail_id integer NULL,
        procedure_source_value varchar(50) NULL, procedure_source_concept_id integer NULL,
        modifier_source_value varchar(50) NULL""",
    "measurement": """
        measurement_id integer NOT NULL, person_id integer NOT NULL, measurement_concept_id integer NOT NULL,
        measurement_date date NOT NULL, measurement_datetime TIMESTAMP NULL, measurement_time varchar(10) NULL,
        measurement_type_concept_id integer NOT NULL, operator_concept_id integer NULL,
        value_as_number NUMERIC NULL, value_as_concept_id integer NULL, unit_concept_id integer NULL,
        range_low NUMERIC NULL, range_high NUMERIC NULL, provider_id integer NULL,
        visit_occurrence_id integer NULL, visit_detail_id integer NULL,
        measurement_source_value varchar(50) NULL, measurement_source_concept_id integer NULL,
        unit_source_value varchar(50) NULL, unit_source_concept_id integer NULL,
        value_source_value varchar(50) NULL, measurement_event_id integer NULL,
        meas_event_field_concept_id integer NULL""",
    "observation": """
        observation_id integer NOT NULL, person_id integer NOT NULL, observation_concept_id integer NOT NULL,
        observation_date date NOT NULL, observation_datetime TIMESTAMP NULL,
        observation_type_concept_id integer NOT NULL, value_as_number NUMERIC NULL,
        value_as_string varchar(60) NULL, value_as_concept_id integer NULL, qualifier_concept_id integer NULL,
        unit_concept_id integer NULL, provider_id integer NULL, visit_occurrence_id integer NULL,
        visit_detail_id integer NULL, observation_source_value varchar(50) NULL,
        observation_source_concept_id integer NULL, unit_source_value varchar(50) NULL,
        qualifier_source_value varchar(50) NULL, value_source_value varchar(50) NULL,
        observation_event_id integer NULL, obs_event_field_concept_id integer NULL""",
    "death": """
        person_id integer NOT NULL, death_date date NOT NULL, death_datetime TIMESTAMP NULL,
        death_type_concept_id integer NULL, cause_concept_id integer NULL,
        cause_source_value varchar(50) NULL, cause_source_concept_id integer NULL""",
    "cdm_source": """
        cdm_source_name varchar(255) NOT NULL, cdm_source_abbreviation varchar(25) NOT NULL,
        cdm_holder varchar(255) NOT NULL, source_description TEXT NULL,
        source_documentation_reference varchar(255) NULL, cdm_etl_reference varchar(255) NULL,
        source_release_date date NOT NULL, cdm_release_date date NOT NULL, cdm_version varchar(10) NULL,
        cdm_version_concept_id integer NOT NULL, vocabulary_version varchar(20) NOT NULL""",
    "concept": """
        concept_id integer NOT NULL, concept_name varchar(255) NOT NULL, domain_id varchar(20) NOT NULL,
        vocabulary_id varchar(20) NOT NULL, concept_class_id varchar(20) NOT NULL,
        standard_concept varchar(1) NULL, concept_code varchar(50) NOT NULL, valid_start_date date NOT NULL,
        valid_end_date date NOT NULL, invalid_reason varchar(1) NULL""",
    "concept_relationship": """
        concept_id_1 integer NOT NULL, concept_id_2 integer NOT NULL, relationship_id varchar(20) NOT NULL,
        valid_start_date date NOT NULL, valid_end_date date NOT NULL, invalid_reason varchar(1) NULL""",
    "concept_ancestor": """
        ancestor_concept_id integer NOT NULL, descendant_concept_id integer NOT NULL,
        min_levels_of_separation integer NOT NULL, max_levels_of_separation integer NOT NULL""",
}

# every column holding a concept_id (what a renumbering must rewrite)
CONCEPT_ID_COLUMNS: dict[str, tuple[str, ...]] = {
    "person": ("gender_concept_id", "race_concept_id", "ethnicity_concept_id", "gender_source_concept_id",
               "race_source_concept_id", "ethnicity_source_concept_id"),
    "observation_period": ("period_type_concept_id",),
    "visit_occurrence": ("visit_concept_id", "visit_type_concept_id", "visit_source_concept_id",
                         "admitted_from_concept_id", "discharged_to_concept_id"),
    "condition_occurrence": ("condition_concept_id", "condition_type_concept_id",
                             "condition_status_concept_id", "condition_source_concept_id"),
    "drug_exposure": ("drug_concept_id", "drug_type_concept_id", "route_concept_id", "drug_source_concept_id"),
    "procedure_occurrence": ("procedure_concept_id", "procedure_type_concept_id", "modifier_concept_id",
                             "procedure_source_concept_id"),
    "measurement": ("measurement_concept_id", "measurement_type_concept_id", "operator_concept_id",
                    "value_as_concept_id", "unit_concept_id", "measurement_source_concept_id",
                    "unit_source_concept_id", "meas_event_field_concept_id"),
    "observation": ("observation_concept_id", "observation_type_concept_id", "value_as_concept_id",
                    "qualifier_concept_id", "unit_concept_id", "observation_source_concept_id",
                    "obs_event_field_concept_id"),
    "death": ("death_type_concept_id", "cause_concept_id", "cause_source_concept_id"),
    "cdm_source": ("cdm_version_concept_id",),
    "concept": ("concept_id",),
    "concept_relationship": ("concept_id_1", "concept_id_2"),
    "concept_ancestor": ("ancestor_concept_id", "descendant_concept_id"),
}


def create_sql(table: str) -> str:
    return f"CREATE TABLE {table} ({TABLES[table]})"


def columns(table: str) -> list[str]:
    return [part.split()[0] for part in TABLES[table].replace("\n", " ").split(",") if part.strip()]
