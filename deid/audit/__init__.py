"""What a person reads later: the audit trail, the re-identification map, references between objects, reports, verification."""
