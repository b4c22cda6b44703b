"""YAML → validated, frozen Profile.  Errors quote the file, the key and the rule."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml
from pydicom.uid import UID_dictionary

from deid.engine.review import load_deny_list
from deid.engine.vr import DATE_VRS, HASHABLE_VRS, fits, max_chars, vr_of
from deid.errors import ProfileError
from deid.profile.model import (ACTIONS, DEFAULT_MAX_OBJECT_BYTES, PLACEHOLDER, ConceptRule, Label,
                                PixelRegion, Profile, Rule, SafePrivateRule, parse_size)
from deid.profile.shipped import known_valid
from deid.profile.tags import format_tag, resolve_tag
from deid.profile.model import OcrSettings  # noqa: I001 (a line of its own: merges with other keys)

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "profiles"

_CLASS_ACTIONS = {
    "private": {"remove", "keep"},
    "overlays": {"remove", "keep"},
    "curves": {"remove", "keep"},
    "instance_uids": {"remap_uid", "keep"},
    "dates": {"generalise_date", "keep", "empty", "remove"},
}


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping (a conflicting rule)."""


class _FastUniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The same over libyaml's parser (~10x faster: a run's start-up); a profile it refuses is
    read again with :class:`_UniqueKeyLoader`, whose messages name the problem as before."""


def _construct_mapping(loader: yaml.constructor.SafeConstructor, node: yaml.MappingNode,
                       deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ProfileError(f"line {key_node.start_mark.line + 1}: key {key!r} is given twice")
        seen.add(key)
    return yaml.constructor.SafeConstructor.construct_mapping(loader, node, deep)


for _loader in (_UniqueKeyLoader, _FastUniqueKeyLoader):
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def builtin_profiles() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def find_profile(name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    """A profile file by built-in name ('vghtpe') or by path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        if not candidate.is_absolute() and relative_to is not None:
            candidate = relative_to / candidate
        if candidate.is_file():
            return candidate.resolve()
        raise ProfileError(f"{candidate}: profile file not found")
    builtin = BUILTIN_DIR / f"{name_or_path}.yaml"
    if builtin.is_file():
        return builtin
    raise ProfileError(
        f"unknown profile {str(name_or_path)!r}: give a .yaml path or one of {', '.join(builtin_profiles())}"
    )


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a profile and the profiles it extends; raise ProfileError naming what is wrong."""
    return _load(find_profile(name_or_path), seen=())


def _read(path: Path, *, always_validate: bool = False) -> tuple[dict, str]:
    """A profile file's data, checked against the profile schema, and the sha256 of its bytes (a
    shipped profile, unedited, passed that schema already: deid.profile.shipped)."""
    raw = path.read_bytes()
    try:
        try:
            data = yaml.load(raw.decode("utf-8"), Loader=_FastUniqueKeyLoader)
        except (ProfileError, yaml.YAMLError):  # told where and what as the Python parser says it
            data = yaml.load(raw.decode("utf-8"), Loader=_UniqueKeyLoader)
    except ProfileError as exc:
        raise ProfileError(f"{path}: {exc} (conflicting rules)") from None
    except yaml.MarkedYAMLError as exc:  # where yaml stopped (1-based, as editors count)
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise ProfileError(f"{path}{where}: not valid YAML: {exc.problem or exc.context}; "
                           "fix the profile there") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: a profile is a YAML mapping with at least 'name'")
    digest = hashlib.sha256(raw).hexdigest()
    if always_validate or not known_valid(digest):
        _validate(path, data)
    return data, digest


def _validate(path: Path, data: dict) -> None:
    """Raise ProfileError naming the first place where ``data`` breaks the profile schema."""
    import jsonschema  # here: ~30 ms of start-up that a shipped profile does not need

    from deid.profile.schema import PROFILE_SCHEMA

    errors = sorted(jsonschema.Draft202012Validator(PROFILE_SCHEMA).iter_errors(data), key=str)
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ProfileError(f"{path}: {where}: {err.message}")


def validate_file(path: Path) -> str:
    """Check one profile file against the profile schema (never skipped); the sha256 of its bytes."""
    return _read(path, always_validate=True)[1]


def _load(path: Path, seen: tuple[Path, ...]) -> Profile:
    if path in seen:
        raise ProfileError(f"{path}: 'extends' makes a cycle")
    data, digest = _read(path)
    parent: Profile | None = None
    if "extends" in data:
        parent = _load(find_profile(data["extends"], relative_to=path.parent), seen + (path,))

    from deid.standard import OPTION_COLUMNS

    options = list(parent.options) if parent else []
    for index, option in enumerate(data.get("options", [])):
        if option not in OPTION_COLUMNS:
            raise ProfileError(
                f"{path}: options[{index}]: unknown option {option!r}; known: {', '.join(OPTION_COLUMNS)}"
            )
        if option not in options:
            options.append(option)

    tag_rules = dict(parent.tag_rules) if parent else {}
    tag_rules.update(_rules(path, "rules", data.get("rules", {})))

    class_rules = dict(parent.class_rules) if parent else {}
    for name, spec in data.get("classes", {}).items():
        rule = _rule(path, f"classes.{name}", spec, vr=None)
        if rule.action not in _CLASS_ACTIONS[name]:
            raise ProfileError(
                f"{path}: classes.{name}: action {rule.action!r} cannot apply to this class; "
                f"use one of {', '.join(sorted(_CLASS_ACTIONS[name]))}"
            )
        class_rules[name] = rule

    sop_rules: dict[str, dict[int, Rule]] = {u: dict(r) for u, r in (parent.sop_class_rules.items() if parent else [])}
    for sop_name, block in data.get("sop_classes", {}).items():
        uid = _sop_class_uid(path, sop_name)
        sop_rules.setdefault(uid, {}).update(_rules(path, f"sop_classes.{sop_name}.rules", block.get("rules", {})))

    uid_root = data.get("uid_root", parent.uid_root if parent else None)
    if uid_root is not None and (not fits("UI", uid_root) or len(uid_root) > 40):
        raise ProfileError(f"{path}: uid_root: {uid_root!r} is not a UID root of at most 40 characters")

    method = data.get("method_description", parent.method_description if parent else "")
    if not method:
        method = f"deid {data['name']} {data.get('version', '')}".strip()
    if not fits("LO", method):
        raise ProfileError(f"{path}: method_description: longer than 64 characters (LO)")

    content = data.get("structured_content", {})
    kept_text, concept_rules = _concepts(path, content, parent, tag_rules, sop_rules)
    placeholder = content.get("placeholder", parent.content_placeholder if parent else None)
    if placeholder is not None and not (placeholder.isprintable() and placeholder.strip()):
        raise ProfileError(f"{path}: structured_content.placeholder: {placeholder!r} is not plain text")
    if kept_text and standard_table_of(data, parent) and not _cleans_content(options):
        raise ProfileError(
            f"{path}: structured_content.keep_text: without the option clean_structured_content "
            "PS3.15 removes every TEXT value (Content Sequence: D), so nothing would be kept; add "
            "the option or leave keep_text out")
    free_text = _free_text(path, data.get("free_text", {}), parent)
    checks = data.get("release_check", {})
    standard_table = data.get("standard_table", parent.standard_table if parent else False)
    max_object_bytes = parent.max_object_bytes if parent else DEFAULT_MAX_OBJECT_BYTES
    if "max_object_size" in data.get("limits", {}):
        try:
            max_object_bytes = parse_size(data["limits"]["max_object_size"])
        except ValueError as exc:
            raise ProfileError(f"{path}: limits.max_object_size: {exc}") from None
    digits = data.get("pseudonym", {}).get("case_number_digits", parent.case_number_digits if parent else 10)
    return Profile(
        name=data["name"],
        version=str(data.get("version", "")),
        path=str(path),
        sha256=digest,
        description=data.get("description", ""),
        method_description=method,
        standard_table=bool(standard_table),
        options=tuple(options),
        tag_rules=tag_rules,
        class_rules=class_rules,
        sop_class_rules=sop_rules,
        uid_root=uid_root,
        allow_burned_in=data.get("allow_burned_in", parent.allow_burned_in if parent else False),
        case_number_digits=digits,
        chain=(parent.chain if parent else ()) + (data["name"],),
        labels=_labels(path, data.get("pseudonym", {}).get("labels", {}), parent, tag_rules, sop_rules),
        pixel_regions=_regions(path, data.get("pixels", {}).get("regions", []), parent),
        ocr=_ocr(path, data.get("pixels", {}), parent),
        lossy_pixels=data.get("pixels", {}).get("lossy", parent.lossy_pixels if parent else "quarantine"),
        text_with_identity=content.get(
            "text_with_identity", parent.text_with_identity if parent else "quarantine"),
        content_value_removed=content.get(
            "value_removed", parent.content_value_removed if parent else "remove_item"),
        text_not_kept=content.get(
            "text_not_kept", parent.text_not_kept if parent else "remove_item"),
        **({"content_placeholder": placeholder} if placeholder is not None else {}),
        kept_text=kept_text,
        concept_rules=concept_rules,
        dciodvfy_gate=checks.get("dciodvfy", parent.dciodvfy_gate if parent else False),
        max_object_bytes=max_object_bytes,
        safe_private=_safe_private(path, data.get("safe_private", []), parent, options),
        **free_text,
    )


def _safe_private(path: Path, block: list[Mapping[str, Any]], parent: Profile | None,
                  options: list[str]) -> tuple[SafePrivateRule, ...]:
    """``safe_private``: the profile's own safe private attributes (creator + ``(gggg,xxee)``),
    added to the inherited ones; they are kept only with the option retain_safe_private."""
    from deid.standard import parse_private_tag

    rules = {rule.key: rule for rule in (parent.safe_private if parent else ())}
    for index, spec in enumerate(block):
        where = f"safe_private[{index}]"
        creator = str(spec["creator"]).strip()
        if not creator or not fits("LO", creator) or not creator.isprintable():
            raise ProfileError(f"{path}: {where}.creator: a Private Creator is 1 to 64 printable "
                               "characters without a backslash (the value of (gggg,00bb))")
        try:
            group, element = parse_private_tag(str(spec["tag"]))
        except ValueError as exc:
            raise ProfileError(f"{path}: {where}.tag: {exc}; write the group and the element byte, "
                               "e.g. (0019,xx10): xx is the block the creator reserved") from None
        rule = SafePrivateRule(creator, group, element, f"{path.stem}: {where}")
        rules.setdefault(rule.key, rule)
    if rules and "retain_safe_private" not in options:
        raise ProfileError(f"{path}: safe_private: private attributes are kept only with the option "
                           "retain_safe_private (PS3.15 E.3.10); add it to options or leave "
                           "safe_private out")
    return tuple(rules.values())


def _free_text(path: Path, block: Mapping[str, Any], parent: Profile | None) -> dict[str, Any]:
    """``free_text``: the placeholder, what to do on a match, and the deny-list file (a path
    relative to the profile file; its entries are added to the inherited ones)."""
    placeholder = block.get("placeholder", parent.text_placeholder if parent else PLACEHOLDER)
    if not fits("SH", placeholder) or not placeholder.isprintable() or not placeholder.strip():
        raise ProfileError(f"{path}: free_text.placeholder: {placeholder!r} must be 1 to 16 printable "
                           "characters without a backslash (it must fit every text VR, SH included)")
    deny = set(parent.deny_list) if parent else set()
    if "deny_list" in block:
        file = Path(block["deny_list"])
        try:
            deny |= set(load_deny_list(file if file.is_absolute() else path.parent / file))
        except ProfileError as exc:
            raise ProfileError(f"{path}: free_text.deny_list: {exc}") from None
    return {"text_placeholder": placeholder,
            "text_on_identity": block.get("on_identity", parent.text_on_identity if parent else "replace"),
            **deny_list_fields(tuple(sorted(deny)))}


def deny_list_fields(entries: tuple[str, ...]) -> dict[str, Any]:
    digest = hashlib.sha256("\n".join(entries).encode("utf-8")).hexdigest() if entries else ""
    return {"deny_list": entries, "deny_list_sha256": digest}


def with_deny_list(profile: Profile, file: Path) -> Profile:
    """``profile`` with the entries of a deny-list file (``--deny-list``, the node's ``deny_list``)
    added to its own."""
    entries = tuple(sorted(set(profile.deny_list) | set(load_deny_list(file))))
    return dataclasses.replace(profile, **deny_list_fields(entries))


_PSEUDONYM_ACTIONS = ("hash", "pseudonym")


def standard_table_of(data: Mapping[str, Any], parent: Profile | None) -> bool:
    return bool(data.get("standard_table", parent.standard_table if parent else False))


def _cleans_content(options: list[str]) -> bool:
    return "clean_structured_content" in options


def _concepts(path: Path, block: Mapping[str, Any], parent: Profile | None,
              tag_rules: Mapping[int, Rule], sop_rules: Mapping[str, Mapping[int, Rule]]
              ) -> tuple[dict[tuple[str, str], ConceptRule], dict[tuple[str, str], ConceptRule]]:
    """``structured_content.keep_text`` (TEXT concepts kept) and ``.concepts`` (concept rules),
    merged over the parent's by (code, scheme): a concept rule of a profile replaces an inherited
    keep_text entry of the same concept and the other way round."""
    kept = dict(parent.kept_text) if parent else {}
    rules = dict(parent.concept_rules) if parent else {}
    seen: dict[tuple[str, str], str] = {}
    for list_name in ("keep_text", "concepts"):
        for index, spec in enumerate(block.get(list_name, [])):
            where = f"structured_content.{list_name}[{index}]"
            code, scheme = str(spec["code"]).strip(), str(spec["scheme"]).strip()
            if (code, scheme) in seen:
                raise ProfileError(f"{path}: {where}: the concept ({code}, {scheme}) is also given as "
                                   f"{seen[(code, scheme)]} (conflicting rules)")
            seen[(code, scheme)] = where
            source = f"{path.stem}: {where}"
            if list_name == "keep_text":
                rule = ConceptRule(code, scheme, spec["meaning"], "keep", source)
                kept[rule.key] = rule
                rules.pop(rule.key, None)
                continue
            rule = _concept_rule(path, where, spec, code, scheme, source, tag_rules, sop_rules)
            rules[rule.key] = rule
            kept.pop(rule.key, None)
    return kept, rules


def _concept_rule(path: Path, where: str, spec: Mapping[str, Any], code: str, scheme: str, source: str,
                  tag_rules: Mapping[int, Rule], sop_rules: Mapping[str, Mapping[int, Rule]]) -> ConceptRule:
    action = spec["action"]
    value = spec.get("value")
    if action == "replace":
        if value is None or not str(value).strip() or not str(value).isprintable():
            raise ProfileError(f"{path}: {where}: 'replace' needs a 'value' of plain text")
    elif value is not None:
        raise ProfileError(f"{path}: {where}: 'value' only goes with action replace")
    length, same_as = spec.get("length"), None
    if (length is not None or "same_as" in spec) and action != "pseudonym":
        raise ProfileError(f"{path}: {where}: 'length' and 'same_as' only go with action pseudonym")
    if "same_as" in spec:
        same_as = resolve_tag(str(spec["same_as"]))
        if same_as is None:
            raise ProfileError(f"{path}: {where}.same_as: unknown tag or keyword {spec['same_as']!r}")
        if length is not None:
            raise ProfileError(f"{path}: {where}: with same_as the length is the one of that attribute's rule")
        found = [tag_rules.get(same_as)] + [block.get(same_as) for block in sop_rules.values()]
        if not any(rule is not None and rule.action in _PSEUDONYM_ACTIONS for rule in found):
            raise ProfileError(f"{path}: {where}.same_as: no rule hashes or pseudonymises "
                               f"{spec['same_as']}, so there is no pseudonym to share; add one")
    return ConceptRule(code, scheme, spec["meaning"], action, source,
                       value=None if value is None else str(value), length=length, same_as=same_as)


def _labels(path: Path, block: Mapping[str, Any], parent: Profile | None, tag_rules: Mapping[int, Rule],
            sop_rules: Mapping[str, Mapping[int, Rule]]) -> dict[int, Label]:
    """``pseudonym.labels``: regular expressions (one group) whose match is kept in a pseudonym."""
    labels = dict(parent.labels) if parent else {}
    for name, spec in block.items():
        where = f"pseudonym.labels.{name}"
        tag = resolve_tag(str(name))
        if tag is None:
            raise ProfileError(f"{path}: {where}: unknown tag or keyword {name!r}")
        vr = vr_of(tag)
        if vr not in HASHABLE_VRS:
            raise ProfileError(f"{path}: {where}: a label goes into a hash or case number; {name} is {vr}")
        rules = [tag_rules.get(tag)] + [block_rules.get(tag) for block_rules in sop_rules.values()]
        if not any(rule is not None and rule.action in _PSEUDONYM_ACTIONS for rule in rules):
            raise ProfileError(f"{path}: {where}: no rule hashes or pseudonymises {name}, so the label "
                               "would never be used; add a hash or pseudonym rule for it")
        try:
            pattern = re.compile(spec["pattern"])
        except re.error as exc:
            raise ProfileError(f"{path}: {where}.pattern: not a regular expression ({exc})") from None
        if pattern.groups != 1:
            raise ProfileError(f"{path}: {where}.pattern: needs exactly one group (the label), "
                               f"it has {pattern.groups}")
        separator = spec.get("separator", "-")
        if not fits(vr, separator) or any(c in separator for c in "\\^=") or not separator.isprintable():
            raise ProfileError(f"{path}: {where}.separator: {separator!r} cannot go into a {vr} value")
        labels[tag] = Label(pattern=pattern, source=f"{path.stem}: {where}", separator=separator,
                            on_mismatch=spec.get("on_mismatch", "quarantine"))
    return labels


_TEXT_MATCH_KEYS = ("modality", "manufacturer", "model", "capture_manufacturer", "capture_model")


def _regions(path: Path, block: list[Mapping[str, Any]], parent: Profile | None) -> tuple[PixelRegion, ...]:
    """``pixels.regions``: this profile's regions come before the inherited ones (first match wins)."""
    own: list[PixelRegion] = []
    names: set[str] = set()
    for index, spec in enumerate(block):
        where = f"pixels.regions[{index}]"
        name = spec["name"]
        if name in names:
            raise ProfileError(f"{path}: {where}: the region name {name!r} is given twice")
        names.add(name)
        match: dict[str, tuple[str, ...]] = {}
        for key, raw in spec["match"].items():
            values = raw if isinstance(raw, list) else [raw]
            if key == "sop_class":
                match[key] = tuple(_sop_class_uid(path, str(v), f"{where}.match.sop_class") for v in values)
            elif key in ("rows", "columns"):
                if not all(isinstance(v, int) and v > 0 for v in values):
                    raise ProfileError(f"{path}: {where}.match.{key}: sizes are positive whole numbers")
                match[key] = tuple(str(v) for v in values)
            else:
                match[key] = tuple(str(v).strip().upper() for v in values)
        boxes = []
        for number, box in enumerate(spec["blank"]):
            x, y, width, height = box
            if width < 1 or height < 1:
                raise ProfileError(f"{path}: {where}.blank[{number}]: a box is [x, y, width, height] "
                                   "with width and height of at least 1 pixel")
            boxes.append((x, y, width, height))
        own.append(PixelRegion(name=name, source=f"{path.stem}: {where}", match=match, boxes=tuple(boxes)))
    return tuple(own) + (parent.pixel_regions if parent else ())


def _ocr(path: Path, block: Mapping[str, Any], parent: Profile | None) -> OcrSettings | None:
    """``pixels.ocr``: inherited as a whole unless this profile gives its own (``enabled: false``
    turns an inherited one off)."""
    if "ocr" not in block:
        return parent.ocr if parent else None
    spec = block["ocr"]
    if not spec.get("enabled", True):
        return None
    where = "pixels.ocr"
    fields: dict[str, Any] = {"source": f"{path.stem}: {where}"}
    for key in ("blank", "at_risk", "min_confidence"):
        if key in spec:
            fields[key] = spec[key]
    if "select" in spec:
        select = []
        for index, entry in enumerate(spec["select"]):
            match: dict[str, tuple[str, ...]] = {}
            for key, raw in entry.items():
                values = raw if isinstance(raw, list) else [raw]
                if key == "sop_class":
                    match[key] = tuple(_sop_class_uid(path, str(v), f"{where}.select[{index}].sop_class")
                                       for v in values)
                elif key == "burned_in":  # YAML 1.1 reads a bare NO / YES as a boolean
                    match[key] = tuple({True: "YES", False: "NO"}.get(v, str(v).strip().upper())
                                       if isinstance(v, bool) else str(v).strip().upper() for v in values)
                    if not set(match[key]) <= {"YES", "NO", "ABSENT"}:
                        raise ProfileError(f"{path}: {where}.select[{index}].burned_in: the values are "
                                           "YES, NO and ABSENT (the attribute missing or empty)")
                else:
                    match[key] = tuple(str(v).strip().upper() for v in values)
            select.append(MappingProxyType(match))
        fields["select"] = tuple(select)
    return OcrSettings(**fields)


def _sop_class_uid(path: Path, name: str, where: str | None = None) -> str:
    for uid, entry in UID_dictionary.items():
        if name in (uid, entry[4]) and entry[1] == "SOP Class":
            return uid
    raise ProfileError(f"{path}: {where or 'sop_classes.' + name}: unknown SOP class (use a keyword like RTStructureSetStorage or a UID)")


def _rules(path: Path, where: str, block: Mapping[str, Any]) -> dict[int, Rule]:
    rules: dict[int, Rule] = {}
    named: dict[int, str] = {}
    for name, spec in block.items():
        tag = resolve_tag(str(name))
        if tag is None:
            raise ProfileError(f"{path}: {where}.{name}: unknown tag or keyword {name!r}")
        if tag in rules:
            raise ProfileError(
                f"{path}: {where}.{name}: conflicting rules: {format_tag(tag)} is also given as {named[tag]!r}"
            )
        rules[tag] = _rule(path, f"{where}.{name}", spec, vr=vr_of(tag))
        named[tag] = str(name)
    return rules


def _rule(path: Path, where: str, spec: Any, vr: str | None) -> Rule:
    if isinstance(spec, str):
        spec = {"action": spec}
    action = spec["action"]
    if action not in ACTIONS:
        raise ProfileError(f"{path}: {where}: unknown action {action!r}; known: {', '.join(ACTIONS)}")
    source = f"{path.stem}: {where}"
    value = spec.get("value")
    length = spec.get("length")
    if vr is not None:
        _check_fit(path, where, action, vr, None if value is None else str(value), length)
    if action == "replace" and value is None:
        raise ProfileError(f"{path}: {where}: 'replace' needs a 'value'")
    return Rule(action=action, source=source, value=None if value is None else str(value), length=length)


def _check_fit(path: Path, where: str, action: str, vr: str, value: str | None, length: int | None) -> None:
    def refuse(why: str) -> None:
        raise ProfileError(f"{path}: {where}: action {action!r} cannot fit VR {vr}: {why}")

    if action == "generalise_date" and vr not in DATE_VRS:
        refuse("only DA and DT values are dates")
    if action == "remap_uid" and vr != "UI":
        refuse("only UI values are UIDs")
    if action == "hash" and vr not in HASHABLE_VRS:
        refuse("a hash is text; use it on AE, CS, LO, LT, PN, SH, ST, UC or UT attributes")
    if action == "pseudonym" and vr not in HASHABLE_VRS | {"UI"}:
        refuse("a pseudonym is text or a UID")
    if length is not None:
        if action not in ("hash", "pseudonym"):
            refuse("'length' only goes with hash or pseudonym")
        limit = max_chars(vr) or 64
        if not 1 <= length <= limit:
            refuse(f"length {length} is outside 1..{limit}")
    if action == "replace" and value is not None and not fits(vr, value):
        refuse(f"the value does not fit {vr}")
