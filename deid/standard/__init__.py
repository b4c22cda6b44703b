"""The DICOM standard's de-identification tables, packaged, with plain lookups.

* PS3.15 Table E.1-1 / E.1-1a (edition 2026d): :func:`confidentiality_rows`, :func:`row_for_tag`,
  :func:`private_row`, :data:`OPTION_COLUMNS`, :data:`ACTION_CODES`;
* PS3.15 Table E.3.10-1 safe private attributes (2026d): :func:`safe_private_rows`,
  :func:`safe_private_index`;
* PS3.16 CID 7050 (2026d): :func:`method_code`, :func:`method_codes`;
* attribute Types per IOD (dicom3tools 2024-12-20, about DICOM 2024d/e): :func:`attribute_type`,
  :func:`required_level`, :func:`iod_for_sop_class`, :func:`sop_class_uids`,
  :func:`iod_attribute_rows`, :func:`iod_modules`.

Data files are read on first use and cached; everything returned is immutable.
"DICOM PS3.15 2026d, (c) NEMA"; "DICOM PS3.16 2026d, (c) NEMA". See ``data/README.md``.
"""

from deid.standard.confidentiality import (
    ACTION_CODES,
    BASIC_PROFILE,
    EDITION,
    OPTION_COLUMNS,
    PS3_15_ACKNOWLEDGEMENT,
    ConfidentialityRow,
    action_codes,
    confidentiality_rows,
    private_row,
    row_for_tag,
)
from deid.standard.iod_types import (
    attribute_type,
    iod_attribute_rows,
    iod_for_sop_class,
    iod_modules,
    module_attribute_rows,
    module_recursion_points,
    required_level,
    sop_class_uids,
)
from deid.standard.methods import (
    PS3_16_ACKNOWLEDGEMENT,
    MethodCode,
    method_code,
    method_codes,
)
from deid.standard.safe_private import (
    SafePrivate,
    parse_private_tag,
    safe_private_edition,
    safe_private_index,
    safe_private_rows,
)

__all__ = [
    "ACTION_CODES",
    "BASIC_PROFILE",
    "EDITION",
    "OPTION_COLUMNS",
    "PS3_15_ACKNOWLEDGEMENT",
    "PS3_16_ACKNOWLEDGEMENT",
    "ConfidentialityRow",
    "MethodCode",
    "SafePrivate",
    "action_codes",
    "attribute_type",
    "confidentiality_rows",
    "iod_attribute_rows",
    "iod_for_sop_class",
    "iod_modules",
    "method_code",
    "method_codes",
    "module_attribute_rows",
    "module_recursion_points",
    "parse_private_tag",
    "private_row",
    "required_level",
    "row_for_tag",
    "safe_private_edition",
    "safe_private_index",
    "safe_private_rows",
    "sop_class_uids",
]
