"""deid: DICOM de-identification pipeline."""
__version__ = "0.1.0"
