"""The JSON Schema of a profile YAML file: its shape only; meaning is checked by the loader."""

from __future__ import annotations

from deid.profile.model import CLASS_NAMES, CONTENT_ITEM_ACTIONS

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
            "properties": {"case_number_digits": {"type": "integer", "minimum": 4, "maximum": 16}},
            "additionalProperties": False,
        },
        "structured_content": {
            "type": "object",
            "properties": {
                "text_with_identity": {"enum": list(CONTENT_ITEM_ACTIONS)},
                "value_removed": {"enum": list(CONTENT_ITEM_ACTIONS)},
            },
            "additionalProperties": False,
        },
        "release_check": {
            "type": "object",
            "properties": {"dciodvfy": {"type": "boolean"}},
            "additionalProperties": False,
        },
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

