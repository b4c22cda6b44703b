"""The JSON Schema of a profile YAML file: its shape only; meaning is checked by the loader."""

from __future__ import annotations

from deid.profile.model import (
    CLASS_NAMES,
    CONCEPT_ACTIONS,
    CONTENT_ITEM_ACTIONS,
    FREE_TEXT_ACTIONS,
    LABEL_MISMATCH,
    LOSSY_ACTIONS,
    OCR_BLANK,
    OCR_SELECT_KEYS,
    REGION_KEYS,
    TEXT_WITH_IDENTITY_ACTIONS,
)

_RULE = {
    "oneOf": [
        {"type": "string"},
        {
            "type": "object",
            "properties": {
                "action": {"type": "string"},
                "value": {"type": ["string", "number"]},
                "length": {"type": "integer"},
                "note": {"type": "string"},
            },
            "required": ["action"],
            "additionalProperties": False,
        },
    ]
}

_RULES = {"type": "object", "additionalProperties": _RULE}

_LABEL = {
    "type": "object",
    "properties": {
        "pattern": {"type": "string", "minLength": 1},
        "separator": {"type": "string", "maxLength": 4},
        "on_mismatch": {"enum": list(LABEL_MISMATCH)},
        "note": {"type": "string"},
    },
    "required": ["pattern"],
    "additionalProperties": False,
}

_CONCEPT_NAME = {
    "code": {"type": "string", "minLength": 1, "maxLength": 64},
    "scheme": {"type": "string", "minLength": 1, "maxLength": 16},
    "meaning": {"type": "string", "minLength": 1, "maxLength": 64},
    "note": {"type": "string"},
}

_KEPT_TEXT = {
    "type": "object",
    "properties": _CONCEPT_NAME,
    "required": ["code", "scheme", "meaning"],
    "additionalProperties": False,
}

_CONCEPT_RULE = {
    "type": "object",
    "properties": {
        **_CONCEPT_NAME,
        "action": {"enum": list(CONCEPT_ACTIONS)},
        "value": {"type": ["string", "number"]},
        "length": {"type": "integer", "minimum": 8, "maximum": 64},
        "same_as": {"type": "string"},
    },
    "required": ["code", "scheme", "meaning", "action"],
    "additionalProperties": False,
}

_MATCH_VALUE = {"oneOf": [
    {"type": ["string", "integer"]},
    {"type": "array", "items": {"type": ["string", "integer"]}, "minItems": 1},
]}

_BOX = {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 4, "maxItems": 4}

_OCR = {
    "type": "object",
    "properties": {
        "enabled": {"type": "boolean"},
        "blank": {"enum": list(OCR_BLANK)},
        "at_risk": {"type": "boolean"},
        "select": {"type": "array", "items": {
            "type": "object", "properties": {
                **{k: _MATCH_VALUE for k in OCR_SELECT_KEYS},
                # YAML reads a bare NO or YES as a boolean: taken as the word
                "burned_in": {"oneOf": [{"type": ["string", "boolean"]}, {
                    "type": "array", "items": {"type": ["string", "boolean"]}, "minItems": 1}]}},
            "minProperties": 1, "additionalProperties": False}},
        "min_confidence": {"type": "number", "minimum": 0, "maximum": 100},
        "note": {"type": "string"},
    },
    "additionalProperties": False,
}

_REGION = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9._ -]+$"},
        "match": {"type": "object", "properties": {k: _MATCH_VALUE for k in REGION_KEYS},
                  "additionalProperties": False},
        "blank": {"type": "array", "items": _BOX, "minItems": 1},
        "note": {"type": "string"},
    },
    "required": ["name", "match", "blank"],
    "additionalProperties": False,
}

_SAFE_PRIVATE = {
    "type": "object",
    "properties": {
        "creator": {"type": "string", "minLength": 1, "maxLength": 64},
        "tag": {"type": "string"},
        "note": {"type": "string"},
    },
    "required": ["creator", "tag"],
    "additionalProperties": False,
}

PROFILE_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9._-]+$"},
        "version": {"type": ["string", "integer", "number"]},
        "description": {"type": "string"},
        "extends": {"type": "string"},
        "standard_table": {"type": "boolean"},
        "options": {"type": "array", "items": {"type": "string"}},
        "method_description": {"type": "string"},
        "uid_root": {"type": ["string", "null"]},
        "allow_burned_in": {"type": "boolean"},
        "pseudonym": {
            "type": "object",
            "properties": {
                "case_number_digits": {"type": "integer", "minimum": 4, "maximum": 16},
                "labels": {"type": "object", "additionalProperties": _LABEL},
            },
            "additionalProperties": False,
        },
        "pixels": {
            "type": "object",
            "properties": {"regions": {"type": "array", "items": _REGION}, "ocr": _OCR,
                           "lossy": {"enum": list(LOSSY_ACTIONS)}, "note": {"type": "string"}},
            "additionalProperties": False,
        },
        "structured_content": {
            "type": "object",
            "properties": {
                "text_with_identity": {"enum": list(TEXT_WITH_IDENTITY_ACTIONS)},
                "value_removed": {"enum": list(CONTENT_ITEM_ACTIONS)},
                "text_not_kept": {"enum": list(CONTENT_ITEM_ACTIONS)},
                "placeholder": {"type": "string", "minLength": 1, "maxLength": 64},
                "keep_text": {"type": "array", "items": _KEPT_TEXT},
                "concepts": {"type": "array", "items": _CONCEPT_RULE},
                "note": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "limits": {
            "type": "object",
            "properties": {"max_object_size": {"type": ["string", "integer"]}},
            "additionalProperties": False,
        },
        "free_text": {
            "type": "object",
            "properties": {
                "deny_list": {"type": "string", "minLength": 1},
                "placeholder": {"type": "string", "minLength": 1},
                "on_identity": {"enum": list(FREE_TEXT_ACTIONS)},
                "note": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "release_check": {
            "type": "object",
            "properties": {"dciodvfy": {"type": "boolean"}},
            "additionalProperties": False,
        },
        "safe_private": {"type": "array", "items": _SAFE_PRIVATE},
        "classes": {
            "type": "object",
            "properties": {name: _RULE for name in CLASS_NAMES},
            "additionalProperties": False,
        },
        "rules": _RULES,
        "sop_classes": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {"rules": _RULES, "note": {"type": "string"}},
                "additionalProperties": False,
            },
        },
    },
    "required": ["name"],
    "additionalProperties": False,
}

