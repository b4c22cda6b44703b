"""Compressed Pixel Data that must be blanked: decoded to native form, and encoded again losslessly.

Lossless inputs (RLE, JPEG-LS lossless, JPEG 2000 lossless, JPEG lossless) are decoded with the
codecs pydicom has here and written back in their own syntax when pydicom can encode it (RLE
Lossless, JPEG-LS Lossless with pyjpegls), else as RLE Lossless.  Lossy inputs are quarantined with
the command that converts them, unless the profile says ``pixels.lossy: reencode``: then they are
decoded once and written as RLE Lossless (no loss beyond the one they already had; Lossy Image
Compression stays 01).  Encoding is deterministic: the same pixels give the same bytes.
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder, get_encoder
from pydicom.uid import (
    UID,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from deid.errors import ObjectError

#: Encapsulated syntaxes whose pixels are exactly the original ones.
LOSSLESS = frozenset({RLELossless, JPEGLSLossless, JPEG2000Lossless, JPEGLosslessSV1,
                      "1.2.840.10008.1.2.4.57",  # JPEG Lossless, Non-Hierarchical (Process 14)
                      "1.2.840.10008.1.2.4.201",  # High-Throughput JPEG 2000 (Lossless Only)
                      "1.2.840.10008.1.2.4.202",  # High-Throughput JPEG 2000 RPCL (Lossless Only)
                      "1.2.840.10008.1.2.8.1"})  # Deflated Image Frame Compression
#: The syntaxes deid writes again in their own form (pydicom's encoder, deterministic).
REENCODED_AS_ITSELF = frozenset({RLELossless, JPEGLSLossless})
#: What converts a syntax to native form (shown in the quarantine reason).
_CONVERT = {"1.2.840.10008.1.2.4.50": "dcmdjpeg IN OUT", "1.2.840.10008.1.2.4.51": "dcmdjpeg IN OUT",
            "1.2.840.10008.1.2.4.57": "dcmdjpeg IN OUT", "1.2.840.10008.1.2.4.70": "dcmdjpeg IN OUT",
            "1.2.840.10008.1.2.4.80": "dcmdjpls IN OUT", "1.2.840.10008.1.2.4.81": "dcmdjpls IN OUT",
            "1.2.840.10008.1.2.5": "dcmdrle IN OUT"}


def syntax_of(ds: Dataset) -> UID:
    return UID(str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or ""))


def convert_command(syntax: str) -> str:
    """The command that writes an object of ``syntax`` with native (uncompressed) pixels."""
    return _CONVERT.get(str(syntax), "gdcmconv --raw IN OUT")


def decode(ds: Dataset, lossy: str) -> UID:
    """Decode ``ds``'s encapsulated Pixel Data in place to native Explicit VR Little Endian (colour
    as RGB); returns the syntax it had.  ObjectError when it is lossy and the profile does not
    re-encode lossy pixels, or when no codec here decodes it."""
    syntax = syntax_of(ds)
    name = syntax.name or str(syntax)
    if syntax not in LOSSLESS and lossy != "reencode":
        raise ObjectError(
            "pixels-lossy", f"the pixels must be blanked but they are lossy compressed ({name}), and "
            "blanking means writing them again; convert the file to native pixels "
            f"(`{convert_command(syntax)}`) and run it again, or let the profile write them again "
            "(pixels.lossy: reencode)", stage="pixels", path="(0002,0010)")
    decoder = get_decoder(syntax) if syntax.is_transfer_syntax else None
    if decoder is None or not decoder.is_available:
        raise ObjectError(
            "pixels-decode-unavailable", f"the pixels must be blanked but no codec here decodes "
            f"{name}; convert the file to native pixels (`{convert_command(syntax)}`) and run it again, "
            "or install the pydicom plugin for it (pylibjpeg with its libjpeg/openjpeg plugins)",
            stage="pixels", path="(0002,0010)")
    try:
        ds.decompress(as_rgb=True, generate_instance_uid=False)
    except Exception as exc:  # a damaged stream, or a plugin failure
        raise ObjectError(
            "pixels-decode-failed", f"the compressed pixels ({name}) cannot be decoded "
            f"({exc.__class__.__name__}): the file may be damaged; fetch it again, or convert it to "
            f"native pixels (`{convert_command(syntax)}`) and run it again",
            stage="pixels", path="(7FE0,0010)") from None
    return syntax


def encode(ds: Dataset, original: UID) -> UID:
    """Encode ``ds``'s native Pixel Data again: in ``original`` when deid writes it losslessly,
    else RLE Lossless; returns the syntax written."""
    target = original if original in REENCODED_AS_ITSELF else RLELossless
    try:
        available = get_encoder(target).is_available
    except NotImplementedError:
        available = False
    if not available:
        target = RLELossless
    try:
        ds.compress(target, encoding_plugin="pydicom" if target == RLELossless else "",
                    generate_instance_uid=False)
    except Exception as exc:  # a layout the encoder does not take (e.g. more than 15 segments)
        raise ObjectError(
            "pixels-encode-failed", f"the blanked pixels cannot be written as {target.name} "
            f"({exc.__class__.__name__}); convert the file to native pixels "
            f"(`{convert_command(original)}`) and run it again", stage="pixels",
            path="(7FE0,0010)") from None
    return target
